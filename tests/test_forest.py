"""The forest plot (plots.forest_plot): every Δ cell of the study in one figure, one panel per unit.

A Report built by hand with Δ cells of both units, significant ones in either direction (p_adjusted set),
grey ones (p_adjusted high, or None even where the interval excludes zero) and cells without an interval;
then the golden study through plot_curves (--plots), which must write forest.png beside the curves.
No browser: the HTML page's forest image is checked in Chromium by test_report_html.py.
"""
from __future__ import annotations

import struct
from pathlib import Path

import pytest
from matplotlib.collections import LineCollection
from matplotlib.colors import to_hex
from runfolders import write_study

from mtl_cluster.collect.scan import load_runs
from mtl_cluster.collect.compare import Cell, Report, Row, Section, build_report
from mtl_cluster.collect.plots import (
    DPI,
    FOREST_COLOURS,
    FOREST_FILE,
    forest_plot,
    forest_png,
    forest_points,
    plot_curves,
)
from mtl_cluster.tasks import METRIC_BY_KEY

MTL = "Δ AlexNet-Gender_Smile_Emotion_Age − STL"
PRE = "Δ AlexNet-Gender_Age − STL"
LONG = "Δ " + "AlexNet-Gender_Smile_Emotion_Age (lr_rate=0.01, weight_decay=0.0005, batch_size=64) " * 2 + "− STL"

# metric -> (cell, expected colour, hollow?) of the first section's Δ row
CELLS = {
    "gender_acc": (Cell(1.5, 3, n_stl=3, ci_low=0.5, ci_high=2.5, p_value=0.004, p_adjusted=0.01), "better", False),
    "smile_acc": (Cell(-2.0, 3, n_stl=3, ci_low=-3.0, ci_high=-1.0, p_value=0.01, p_adjusted=0.02), "worse", False),
    "emotion_acc": (Cell(-3.0, 2, n_stl=2, note="zero variance, no interval"), "neutral", True),
    "age_acc": (Cell(0.5, 3, n_stl=3, ci_low=-0.2, ci_high=1.2, p_value=0.2, p_adjusted=0.4), "neutral", False),
    # age MAE: lower is better, so a negative Δ is multitask better
    "age_mae_argmax": (Cell(-0.6, 3, n_stl=3, ci_low=-0.9, ci_high=-0.3, p_value=0.01, p_adjusted=0.03), "better",
                       False),
    "age_mae": (Cell(0.4, 3, n_stl=3, ci_low=0.1, ci_high=0.7, p_value=0.02, p_adjusted=0.04), "worse", False),
}
# the second section: one seed (no interval), and an interval without any p (grey: colour follows p only)
PRE_CELLS = {
    "gender_acc": (Cell(0.1, 1, n_stl=1, note="n=1, no interval"), "neutral", True),
    "age_mae_argmax": (Cell(1.2, 3, n_stl=3, ci_low=0.2, ci_high=2.2), "neutral", False),
}


def _section(key: str, title: str, label: str, cells: dict[str, tuple[Cell, str, bool]]) -> Section:
    tasks = ["gender", "smile", "emotion", "age"] if "Smile" in label else ["gender", "age"]
    row = Row(label, "delta", [1], {m: c for m, (c, _, _) in cells.items()}, tasks,
              {m: f"AlexNet-{METRIC_BY_KEY[m].task}" for m in cells})
    return Section(key, title, "CVPR_16_ChaLearn", [], [row], [])


def _report(*sections: Section) -> Report:
    return Report(select="best", rule="lowest validation loss", found=10, counted=10, sections=list(sections),
                  problems=[])


@pytest.fixture
def report() -> Report:
    return _report(_section("pretrained_false", "experiment results, load_IMDB_WIKI_pretrained_model = False", MTL,
                            CELLS),
                   _section("pretrained_true", "experiment results, load_IMDB_WIKI_pretrained_model = True", PRE,
                            PRE_CELLS))


def _points(ax) -> dict[int, object]:
    """forest_points index -> the point's Line2D in this panel."""
    return {int(str(line.get_gid()).split(":")[1]): line for line in ax.lines
            if str(line.get_gid()).startswith("forest-point:")}


def test_one_point_per_delta_cell_in_two_panels(report) -> None:
    fig = forest_plot(report)
    assert fig is not None
    axes = fig.axes
    assert len(axes) == 2
    assert axes[0].get_xlabel() == "Δ percentage points (→ multitask better)"
    assert axes[1].get_xlabel() == "Δ years (← multitask better)"
    points = forest_points(report)
    expected = [(m, *v) for m, v in CELLS.items()] + [(m, *v) for m, v in PRE_CELLS.items()]
    assert len(points) == len(expected) == 8
    drawn = [_points(ax) for ax in axes]
    assert sum(len(d) for d in drawn) == len(points)
    assert sorted(i for d in drawn for i in d) == list(range(len(points)))
    mae = {"age_mae_argmax", "age_mae"}
    for panel, d in enumerate(drawn):   # accuracies (age's included) on the first panel, MAE on the second
        assert {points[i].metric in mae for i in d} == {panel == 1}
    # the zero line on each panel
    for ax in axes:
        zero = [line for line in ax.lines if line.get_gid() == "forest-zero"]
        assert len(zero) == 1 and list(zero[0].get_xdata()) == [0, 0]
    # colour follows p_adjusted only; hollow = no interval; the point sits at the mean
    by_metric = {(p.row.label, p.metric): i for i, p in enumerate(points)}
    lines = {i: line for d in drawn for i, line in d.items()}
    for label, cells in ((MTL, CELLS), (PRE, PRE_CELLS)):
        for metric, (cell, colour, hollow) in cells.items():
            line = lines[by_metric[(label, metric)]]
            assert to_hex(line.get_markeredgecolor()) == FOREST_COLOURS[colour], (label, metric)
            face = to_hex(line.get_markerfacecolor())
            assert (face == "#ffffff") == hollow and (hollow or face == FOREST_COLOURS[colour]), (label, metric)
            assert list(line.get_xdata()) == [pytest.approx(cell.mean)]
    # the intervals: one bar per cell that has one, spanning exactly ci_low..ci_high
    for ax, d in zip(axes, drawn):
        bars = sorted(tuple(round(x, 9) for x in (seg[0][0], seg[1][0]))
                      for c in ax.collections if isinstance(c, LineCollection) for seg in c.get_segments())
        want = sorted((round(points[i].cell.ci_low, 9), round(points[i].cell.ci_high, 9)) for i in d
                      if points[i].cell.ci_low is not None)
        assert bars == want
    # every cell keeps its label ("<Δ row> · <metric header>"), the ones without an interval too
    ticks = [t.get_text() for ax in axes for t in ax.get_yticklabels()]
    for p in points:
        assert f"{p.row.label} · {METRIC_BY_KEY[p.metric].header}" in ticks
    assert f"{MTL} · Emotion Acc(%)" in ticks and f"{PRE} · Gender(%)" in ticks
    title = fig.get_suptitle()
    assert "Holm-adjusted p < 0.05" in title and "paired" in title
    # headings: each section's title with the task, once per panel where it has cells
    texts = [t.get_text() for t in axes[1].texts]
    assert "experiment results, load_IMDB_WIKI_pretrained_model = False — age" in texts
    assert "experiment results, load_IMDB_WIKI_pretrained_model = True — age" in texts


def test_no_delta_cell_no_plot(report, tmp_path) -> None:
    for sec in report.sections:
        sec.rows = [Row("AlexNet-Gender", "result", [1], {"gender_acc": Cell(84.0, 1)}, ["gender"])]
    assert forest_plot(report) is None and forest_png(report) is None
    assert forest_plot(_report()) is None
    written, problems = plot_curves(report, tmp_path / "plots")
    assert FOREST_FILE not in [p.name for p in written] and not (tmp_path / "plots" / FOREST_FILE).exists()
    assert problems == []


def test_one_unit_one_panel(report) -> None:
    report.sections[0].rows[0].cells = {"gender_acc": CELLS["gender_acc"][0]}
    report.sections.pop()
    fig = forest_plot(report)
    assert fig is not None and len(fig.axes) == 1 and "percentage points" in fig.axes[0].get_xlabel()


def _png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", png[16:24])


def test_long_labels_fit_and_height_grows(report) -> None:
    small = forest_plot(report)
    assert small is not None
    w, h = _png_size(forest_png(report) or b"")
    assert w >= 600 and h >= 400   # the HTML test's minimum for a legible image
    # many cells, one with a very long label: a taller figure, and every text inside the figure as sized
    report.sections[1].rows = [Row(f"{LONG} {k}", "delta", [1], dict(report.sections[0].rows[0].cells), [])
                               for k in range(4)]
    big = forest_plot(report)
    assert big is not None
    assert big.get_size_inches()[1] > small.get_size_inches()[1] + 4 * 6 * 0.2
    big.canvas.draw()
    renderer = big.canvas.get_renderer()   # type: ignore[attr-defined]
    box = big.bbox
    texts = [t for ax in big.axes for t in [*ax.get_yticklabels(), *ax.texts]]
    assert any(t.get_text().startswith(LONG) for t in texts)
    for t in texts:
        if t.get_text():
            e = t.get_window_extent(renderer)
            assert e.x0 >= box.x0 - 1 and e.x1 <= box.x1 + 1 and e.y0 >= box.y0 - 1 and e.y1 <= box.y1 + 1, \
                t.get_text()
    assert _png_size(forest_png(report) or b"")[0] <= big.get_size_inches()[0] * DPI + 40


def test_plots_writes_forest_png(tmp_path, monkeypatch) -> None:
    """--plots on the golden study: the curves and forest.png, which holds every Δ cell of the report."""
    write_study(tmp_path / "results")
    monkeypatch.chdir(tmp_path)
    report = build_report(load_runs(Path("results"), "best"))
    written, _ = plot_curves(report, tmp_path / "plots")
    names = [p.name for p in written]
    assert names[-1] == FOREST_FILE and "pretrained_false_gender.png" in names
    assert sorted(names) == sorted(p.name for p in (tmp_path / "plots").iterdir())
    assert (tmp_path / "plots" / FOREST_FILE).read_bytes() == forest_png(report)
    fig = forest_plot(report)
    assert fig is not None and len(fig.axes) == 2
    cells = sum(len(r.cells) for s in report.sections for r in s.rows if r.kind == "delta")
    assert sum(len(_points(ax)) for ax in fig.axes) == cells == len(forest_points(report))

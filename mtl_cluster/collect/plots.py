"""Validation curves, multitask against single-task: one PNG per section and task, from metrics.jsonl; and
the study's forest plot: every Δ cell (multitask minus single-task) with its 95% interval in one figure.

People compare curves faster than tables. Uses matplotlib's object API with the Agg canvas (no pyplot,
no global backend switch, no display needed on a cluster login node). Writes only into ``out_dir``.
"""
from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from ..rundir import RunDir, read_jsonl
from ..tasks import METRIC_BY_KEY, METRICS, TASKS
from .compare import SEED_DATASET, Cell, Report, Row, Section
from .scan import Problem
from .tables import cell_text, row_name

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DPI = 100


def _label(metric: str) -> str:
    m = METRIC_BY_KEY[metric]
    return m.header + (" (years, lower is better)" if m.lower_is_better else "")


def _val_curve(run: Path, metric: str) -> dict[int, float]:
    """epoch -> validation value of one run (torn or odd lines are skipped)."""
    out = {}
    for rec in read_jsonl(RunDir(run).metrics_file):
        v, e = rec.get(metric), rec.get("epoch")
        if rec.get("split") == "val" and isinstance(e, int) and isinstance(v, (int, float)) and math.isfinite(v):
            out[e] = float(v)
    return out


def plot_file_name(section: Section, task: str) -> str:
    extra = "" if section.dataset == SEED_DATASET[section.key] else "-" + re.sub(r"[^\w.-]+", "_", section.dataset)
    return f"{section.key}{extra}_{task}.png"


def curve_figures(report: Report, problems: list[Problem]) -> Iterator[tuple[Section, str, Figure]]:
    """One figure per section and task, drawn but not saved (``--plots`` writes them, the HTML report
    embeds them); runs whose metrics.jsonl gave no curve are appended to ``problems``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    missing = {p.path for p in problems}
    for sec in report.sections:
        paths = {r.num: r.path for r in sec.references}
        for task in dict.fromkeys(c.task for c in sec.columns):
            metrics = [c.metric for c in sec.columns if c.task == task]
            fig = Figure(figsize=(6.4 * len(metrics), 4.8), layout="constrained")
            FigureCanvasAgg(fig)
            axes = fig.subplots(1, len(metrics), squeeze=False)[0]
            datasets = next(c.datasets for c in sec.columns if c.task == task)
            for ax, metric in zip(axes, metrics):
                # only rows that have this metric (the 10-group accuracy: only rows that train decade groups)
                for row in (r for r in sec.rows if r.kind == "result" and task in r.tasks and metric in r.cells):
                    curves = []
                    for num in row.refs:
                        curve = _val_curve(Path(paths[num]), metric)
                        if curve:
                            curves.append(curve)
                        elif paths[num] not in missing:
                            missing.add(paths[num])
                            problems.append(Problem(paths[num], "no curve",
                                                    f"metrics.jsonl has no validation {metric}: left out of the curves",
                                                    counted=True))
                    if curves:
                        _draw(ax, curves, row_name(row), multitask=len(row.tasks) > 1)
                ax.set_xlabel("epoch")
                ax.xaxis.set_major_locator(MaxNLocator(integer=True))
                ax.ticklabel_format(axis="y", useOffset=False)
                ax.set_ylabel(_label(metric))
                ax.grid(alpha=0.3)
                if ax.lines:
                    ax.legend(fontsize="small")
            fig.suptitle(f"{sec.title}\n{task}: validation ({', '.join(datasets)}); solid = multitask, "
                         f"dashed = single-task", fontsize="medium")
            yield sec, task, fig


def plot_curves(report: Report, out_dir: Path) -> tuple[list[Path], list[Problem]]:
    """Write the PNGs; returns them and the runs whose metrics.jsonl gave no curve."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    problems: list[Problem] = []
    for sec, task, fig in curve_figures(report, problems):
        path = out_dir / plot_file_name(sec, task)
        fig.savefig(path, dpi=DPI)
        written.append(path)
    forest = forest_png(report)
    if forest is not None:
        path = out_dir / FOREST_FILE
        path.write_bytes(forest)
        written.append(path)
    return written, sorted(problems, key=lambda p: p.path)


def _draw(ax, curves: list[dict[int, float]], label: str, multitask: bool) -> None:
    """Mean over seeds per epoch; the band spans the seeds' min..max where there are several."""
    epochs = sorted(set().union(*curves))
    values = [[c[e] for c in curves if e in c] for e in epochs]
    mean = [sum(v) / len(v) for v in values]
    n = len(curves)
    line, = ax.plot(epochs, mean, "-" if multitask else "--", marker="o", markersize=3,
                    label=f"{label} (n={n})" if n > 1 else label)
    if n > 1:
        ax.fill_between(epochs, [min(v) for v in values], [max(v) for v in values], alpha=0.2,
                        color=line.get_color())


# -- the forest plot: every Δ cell of the study ------------------------------------------------------
FOREST_FILE = "forest.png"
SIGNIFICANT = 0.05   # Holm-adjusted p below this: the point is coloured
FOREST_COLOURS = {"better": "#1a7f37", "worse": "#c62828", "neutral": "#8a8a8a"}
UNIT_AXIS = {   # panel (unit) -> its x label; the arrow is the direction in which multitask is better
    "pp": "Δ percentage points (→ multitask better)",
    "years": "Δ years (← multitask better)",
    "error": "Δ ε-error (← multitask better)",
}
STAT_WORDS = {"paired": "paired t over seeds", "welch": "Welch's t"}
ROW_INCHES = 0.3   # height of one row of a panel


@dataclass(frozen=True)
class ForestPoint:
    """One Δ cell of the study, in the forest plot's order (section, task, Δ row, metric)."""

    section: str      # the section's title
    task: str
    row: Row
    metric: str
    cell: Cell

    @property
    def label(self) -> str:
        return f"{self.row.label} · {METRIC_BY_KEY[self.metric].header}"

    @property
    def unit(self) -> str:
        return metric_unit(self.metric)


def metric_unit(metric: str) -> str:
    """The panel a metric's Δ goes to: percentage points (accuracies), years (MAE) or ε-error."""
    m = METRIC_BY_KEY[metric]
    if not m.lower_is_better:
        return "pp"
    return "years" if "MAE" in m.header else "error"


def forest_points(report: Report) -> list[ForestPoint]:
    """Every Δ cell: grouped by section (the report's order) and task (the vocabulary's), then Δ row and metric."""
    out = []
    for sec in report.sections:
        deltas = [r for r in sec.rows if r.kind == "delta"]
        for task in TASKS:
            for row in deltas:
                out += [ForestPoint(sec.title, task, row, m.key, row.cells[m.key])
                        for m in METRICS if m.task == task and m.key in row.cells]
    return out


def forest_colour(metric: str, cell: Cell) -> str:
    """"better"/"worse" where the Holm-adjusted p is below 0.05 (by the sign of the mean), else "neutral"."""
    if cell.p_adjusted is None or not cell.p_adjusted < SIGNIFICANT or not math.isfinite(cell.mean) or cell.mean == 0:
        return "neutral"
    sign = -1 if METRIC_BY_KEY[metric].lower_is_better else 1
    return "better" if sign * cell.mean > 0 else "worse"


def _value_text(p: ForestPoint) -> str:
    """The table's text of the cell, with the Holm-adjusted p where the table does not show it."""
    text = cell_text(p.metric, p.cell, "delta")
    q = p.cell.p_adjusted
    if q is not None and "Holm" not in text:
        text += f" Holm p={q:.2g}"
    return text


def _interval(cell: Cell) -> tuple[float, float] | None:
    lo, hi = cell.ci_low, cell.ci_high
    return (lo, hi) if lo is not None and hi is not None and math.isfinite(lo) and math.isfinite(hi) else None


def forest_plot(report: Report) -> Figure | None:
    """The study's forest plot: each Δ cell a point with its 95% interval (a horizontal bar), one panel per
    unit (accuracies in percentage points, MAE in years; stacked), grouped under "section — task" headings,
    a line at zero, the numbers at the right. Coloured where the Holm-adjusted p < 0.05 (green: multitask
    better, red: worse), grey otherwise; a cell without an interval is a hollow point. None without Δ cells.

    Each point is a Line2D with gid ``forest-point:<i>`` (i: its index in ``forest_points``), each zero line
    has gid ``forest-zero``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.transforms import blended_transform_factory

    points = forest_points(report)
    if not points:
        return None
    units = [u for u in UNIT_AXIS if any(p.unit == u for p in points)]
    # per panel: the rows top to bottom, a heading (str) before each section and task, else a point's index
    panels: list[list[str | int]] = []
    for unit in units:
        items: list[str | int] = []
        group = None
        for i, p in enumerate(points):
            if p.unit != unit:
                continue
            if (p.section, p.task) != group:
                group = (p.section, p.task)
                items.append(f"{p.section} — {p.task}")
            items.append(i)
        panels.append(items)
    label_chars = max(len(p.label) for p in points)
    value_chars = max(len(_value_text(p)) for p in points)
    width = max(9.0, 0.075 * label_chars + 0.065 * value_chars + 6.0)
    height = max(4.5, 1.6 + sum(0.9 + ROW_INCHES * len(items) for items in panels))
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(units), 1, squeeze=False,
                        gridspec_kw={"height_ratios": [len(items) + 2 for items in panels]})[:, 0]
    for ax, unit, items in zip(axes, units, panels):
        right = blended_transform_factory(ax.transAxes, ax.transData)
        labels = []
        for y, item in enumerate(items):
            if isinstance(item, str):
                labels.append("")
                ax.axhspan(y - 0.5, y + 0.5, color="#eeeeee", zorder=0, lw=0)
                ax.text(0.006, y, item, transform=right, ha="left", va="center", fontsize="small",
                        fontweight="bold", zorder=4, clip_on=False,
                        bbox={"facecolor": "#eeeeee", "edgecolor": "none", "pad": 1.0})
                continue
            p = points[item]
            labels.append(p.label)
            colour = FOREST_COLOURS[forest_colour(p.metric, p.cell)]
            gid = f"forest-point:{item}"
            interval = _interval(p.cell)
            if interval is not None:
                lo, hi = interval
                bars = ax.errorbar([p.cell.mean], [y], xerr=[[p.cell.mean - lo], [hi - p.cell.mean]], fmt="o",
                                   color=colour, ecolor=colour, elinewidth=1.8, capsize=3.5, markersize=6.5,
                                   zorder=3)
                bars.lines[0].set_gid(gid)
            else:   # n=1 or zero variance: the point only, hollow
                ax.plot([p.cell.mean], [y], "o", markersize=6.5, markerfacecolor="white", markeredgecolor=colour,
                        markeredgewidth=1.8, color=colour, zorder=3, gid=gid)
            ax.text(1.012, y, _value_text(p), transform=right, ha="left", va="center", fontsize="small",
                    color="#333333", clip_on=False)
        ax.axvline(0, color="#333333", lw=1.0, zorder=2, gid="forest-zero")
        ax.set_yticks(range(len(items)), labels)
        ax.tick_params(axis="y", length=0)
        ax.set_ylim(len(items) - 0.5, -0.5)
        ax.margins(x=0.08)
        ax.grid(axis="x", alpha=0.3)
        ax.set_xlabel(UNIT_AXIS[unit])
    fig.suptitle("Multitask minus single-task (Δ) for every compared metric, with its 95% interval "
                 f"({STAT_WORDS.get(report.stat, report.stat)})\ncoloured: Holm-adjusted p < 0.05", fontsize="medium")

    def proxy(kind: str, hollow: bool = False) -> Line2D:
        c = FOREST_COLOURS[kind]
        return Line2D([], [], ls="none", marker="o", markersize=6.5, markeredgewidth=1.8, color=c,
                      markeredgecolor=c, markerfacecolor="white" if hollow else c)

    fig.legend([proxy("better"), proxy("worse"), proxy("neutral"), proxy("neutral", hollow=True)],
               ["multitask better (Holm p < 0.05)", "multitask worse (Holm p < 0.05)",
                "not significant, or no p", "no interval (n=1 or zero variance)"],
               loc="outside lower center", ncols=4, fontsize="small", frameon=False)
    return fig


def forest_png(report: Report) -> bytes | None:
    """The forest plot as PNG bytes (labels never cut: the saved area is the drawing's), None without Δ cells."""
    fig = forest_plot(report)
    if fig is None:
        return None
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight", pad_inches=0.15)
    return buf.getvalue()

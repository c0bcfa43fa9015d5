"""Validation curves, multitask against single-task: one PNG per section and task, from metrics.jsonl.

People compare curves faster than tables. Uses matplotlib's object API with the Agg canvas (no pyplot,
no global backend switch, no display needed on a cluster login node). Writes only into ``out_dir``.
"""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from .collect import Problem
from .compare import SEED_DATASET, Report, Section
from .rundir import RunDir, read_jsonl
from .tables import row_name
from .tasks import METRIC_BY_KEY

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

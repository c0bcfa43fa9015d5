"""Render a comparison ``Report`` as markdown (laid out like the group's notes), CSV, JSON, LaTeX or a rich
table. Pure: text and renderables in, nothing printed, no files.

Numbers: each metric's decimals come from the vocabulary (``tasks.METRICS``: accuracies one, MAE two);
a cell is ``mean ± std (n)`` when n > 1 seeds, the plain value otherwise; a delta cell is the signed
MTL - STL difference, ``[low, high]`` (95% CI) where there is one, and always its n.
CSV and JSON carry the numbers themselves, rounded to 6 decimals so files are stable across machines.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import json
from typing import TYPE_CHECKING, Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from ..tasks import COST_BY_KEY, METRIC_BY_KEY
from .compare import POWER, Cell, Reference, Report, Row, Section
from .cost import CostCell, CostReport, Ratio, StudyTotal
from .scan import Planted
from .stats import seeds_needed

if TYPE_CHECKING:
    from .image_tests import ImageTest, SeedTest

TITLE = "Multitask learning & Single task learning on AlexNet model"
FORMATS = ("md", "csv", "json", "latex", "html")
SUFFIXES = {".md": "md", ".markdown": "md", ".csv": "csv", ".json": "json", ".tex": "latex", ".latex": "latex",
            ".html": "html", ".htm": "html"}
SMOKE = ("SMOKE TEST ON SYNTHETIC DATA: these numbers check the pipeline end to end; they are not evidence "
         "about multitask learning. Chance on the synthetic data: gender and smile 50%, emotion 14.3%; age MAE "
         "25 years for always answering the mean age (ages uniform over 1-100).")
PLANTED = ("Planted answer: in the runs with data.synthetic_shared = [{tasks}], one latent per image sets all "
           "those labels and only the {first} cue shows it{poor}, so a multitask row should beat its single-task "
           "rows on {target}.")


def smoke_lines(report: Report) -> list[str]:
    """The headline of a table with synthetic runs: what it is (a smoke test), and any planted answer."""
    if not report.synthetic:
        return []
    return [SMOKE] + [_planted_line(p) for p in report.planted]


def _planted_line(p: Planted) -> str:
    poor = "".join(f", and {t} trains on {n} images only" for t, n in p.data_poor)
    target = (f"the data-poor {' and '.join(t for t, _ in p.data_poor)}" if p.data_poor else
              "the tasks that learn that cue slowly alone")
    return PLANTED.format(tasks=", ".join(p.shared), first=p.shared[0], poor=poor, target=target)


DELTA_NOTES = {
    "paired": "Δ rows: multitask minus single-task (same section, settings and start), paired by seed: the mean of "
              "the per-seed differences, [95% CI, t with n-1 df], n = seeds both rows have, and Holm p = the paired "
              "t test's p adjusted with Holm's method over all Δ cells of the section.",
    "welch": "Δ rows: multitask minus single-task (same section, settings and start), unpaired: difference of the "
             "means, [95% CI, Welch's t], n = seeds of each side, and Holm p = Welch's p adjusted with Holm's "
             "method over all Δ cells of the section.",
}
BETTER = "Accuracies: higher is better; Age MAE: lower is better. Coloured: Holm p < 0.05."
REFUSED = "not computed: different starts"


def delta_note(report: Report) -> str:
    return f"{DELTA_NOTES[report.stat]} {BETTER}"


def refused_lines(section: Section) -> list[str]:
    """Each Δ cell that is not computed, with its reason (the cell itself says only that it is not)."""
    return [f"{row.label}, {METRIC_BY_KEY[m].header} vs {row.against.get(m, '?')}: {why}."
            for row in section.rows for m, why in row.refused.items()]


def power_lines(section: Section) -> list[str]:
    """Per Δ row: the smallest effect its seeds can detect (80% power, the observed spread of the per-seed
    differences): what tells the group whether n seeds can answer their question."""
    out = []
    for row in (r for r in section.rows if r.kind == "delta"):
        parts = [f"{METRIC_BY_KEY[m].header} ±{c.mde:.{decimals(m)}f}" for m, c in row.cells.items()
                 if c.mde is not None]
        none = [METRIC_BY_KEY[m].header for m, c in row.cells.items() if c.mde is None]
        if not parts:
            continue
        n = sorted({c.n for c in row.cells.values() if c.mde is not None})
        line = (f"Power, {row.label}: with n={'/'.join(map(str, n))} seeds, the smallest Δ detected 80% of the time "
                f"(paired t, α=0.05 two-sided, the observed spread of the per-seed differences): {', '.join(parts)}")
        out.append(line + (f"; none for {', '.join(none)} (no spread)" if none else "") + ".")
    return out


def section_notes(section: Section) -> list[str]:
    """The lines under a section's table: Δ cells not computed and why, the power per Δ row, and what the
    published rows are."""
    published = [PUBLISHED_NOTE] if any(r.kind == "published" for r in section.rows) else []
    return refused_lines(section) + power_lines(section) + published


def seeds_lines(report: Report, wanted: dict[str, float]) -> list[str]:
    """``mtl-collect --seeds-for``: per Δ cell, the seeds a paired comparison needs to detect the wanted effect
    (in the metric's unit) 80% of the time, given the spread of the per-seed differences observed."""
    out = []
    for sec in report.sections:
        for row in (r for r in sec.rows if r.kind == "delta"):
            for m, c in row.cells.items():
                delta = wanted.get(m, wanted.get("*"))
                if delta is None:
                    continue
                need = seeds_needed(delta, c.std, POWER) if c.std else None
                what = (f"{need} seeds" if need is not None else
                        "no estimate (fewer than 2 seeds or no spread to estimate from)" if not c.std else
                        "more than 10,000 seeds")
                out.append(f"{sec.title} / {row.label} / {METRIC_BY_KEY[m].header}: Δ = {delta:g} needs {what} "
                           f"(observed SD of the per-seed differences "
                           f"{'-' if c.std is None else f'{c.std:.{decimals(m) + 1}f}'}, n={c.n})")
    return out


# -- cells ----------------------------------------------------------------------------------------
def decimals(metric: str) -> int:
    return METRIC_BY_KEY[metric].decimals


def _signed(x: float, p: int) -> str:
    s = f"{x:+.{p}f}"
    return "+" + s[1:] if s.startswith("-") and float(s) == 0 else s


def cell_text(metric: str, cell: Cell | None, kind: str = "result") -> str:
    """The text of one table cell (empty for a task the row did not train)."""
    if cell is None or cell.n == 0:
        return ""
    p = decimals(metric)
    if kind == "delta":
        n = f"n={cell.n}" if cell.n_stl in (None, cell.n) else f"n={cell.n} vs {cell.n_stl}"
        if cell.ci_low is not None and cell.ci_high is not None:
            holm = f", Holm p={cell.p_adjusted:.2g}" if cell.p_adjusted is not None else ""
            return f"{_signed(cell.mean, p)} [{_signed(cell.ci_low, p)}, {_signed(cell.ci_high, p)}] ({n}{holm})"
        why = cell.note.replace(f"n={cell.n}, ", "") if cell.note else "no interval"
        return f"{_signed(cell.mean, p)} ({why if why.startswith('n=') else f'{n}, {why}'})"
    if cell.n > 1 and cell.std is not None:
        return f"{cell.mean:.{p}f} ± {cell.std:.{p}f} ({cell.n})"
    return f"{cell.mean:.{p}f}"


def shown_text(row: Row, metric: str) -> str:
    """A table cell as shown: its number, or why a Δ is not computed."""
    return REFUSED if metric in row.refused else cell_text(metric, row.cells.get(metric), row.kind)


def refs_text(refs: list[int]) -> str:
    """``[3]``, ``[1-3]`` (one row's seeds are numbered consecutively) or ``[1, 4]``."""
    if not refs:
        return ""
    if refs == list(range(refs[0], refs[0] + len(refs))) and len(refs) > 1:
        return f"[{refs[0]}-{refs[-1]}]"
    return "[" + ", ".join(map(str, refs)) + "]"


def row_name(row: Row) -> str:
    return row.label if row.kind != "result" else f"{row.label} {refs_text(row.refs)}"


def epoch_line(report: Report) -> str:
    """Which epoch the numbers come from (--select), by which rule, on which split: printed with every table."""
    line = (f"Epoch: --select {report.select} = {report.rule}. Numbers: each task's test split (named in the "
            f"column header); mean ± std (n seeds) where n > 1.")
    if report.protocol_1:
        line += (" Rows marked [protocol 1] are runs from before the test split: their numbers are the validation "
                 "split at the epoch of the lowest total validation loss, the same split that chose it.")
    if report.protocol_2:
        line += (" Rows marked [protocol 2] are runs from before hold-outs were shared by all tasks: a ChaLearn image "
                 "held out to select one task's epoch could be another task's training image, IMDB-WIKI's hold-outs "
                 "split by file rather than by person, and plateau schedules used torch's threshold (1e-4).")
    return line


PUBLISHED_NOTE = ("Published rows: the seed's table as printed (2019), one run each (n=1, no interval), the model "
                  "chosen on the same split it reports, that split drawn with replacement (~1,360 images) with random "
                  "crops and flips: not comparable with the test-split numbers above, and never in a Δ.")


def count_line(report: Report) -> str:
    listed = sum(1 for p in report.problems if not p.counted)
    return f"{report.found} run folders found, {report.counted} in the table, {listed} not in the table."


def grid_rows(section: Section, cost: CostReport | None = None) -> list[list[str]]:
    """Header + body rows of a section as text: the shared shape of markdown, LaTeX and rich."""
    out = [["model", *(c.header for c in section.columns), *(c.header for c in (cost.columns if cost else ()))]]
    for row in section.rows:
        out.append([row_name(row), *(shown_text(row, c.metric)
                                     for c in section.columns), *cost_cells(cost, section, row)])
    return out


# -- cost (--cost) --------------------------------------------------------------------------------
def cost_note(cost: CostReport) -> str:
    """What the cost columns of this table mean (the optional ones only where shown)."""
    peaks = [c.header for c in cost.columns if c.agg == "max"]
    most = (f"{', '.join(peaks)}: the highest over the row's runs and their attempts, not a mean (a limit must fit "
            f"the worst). " if peaks else "")
    return ("Cost columns: mean per run over the row's seeds; (k/n): only k of the row's n runs recorded it; "
            "- : none did (runs from before these records). " + most
            + "; ".join(f"{c.header} = {c.meaning}" for c in cost.columns) + ".")


def _hours(x: float) -> str:
    return f"{x:.2f}" if x >= 0.01 or x == 0 else f"{x:.2g}"


def cost_text(key: str, cell: CostCell | None) -> str:
    """One cost cell: the mean (parameters and images/s whole, with thousands separators), "-" without data."""
    if cell is None:
        return "-"
    p = COST_BY_KEY[key].decimals
    text = f"{cell.mean:,.0f}" if p == 0 else _hours(cell.mean) if key.endswith("_hours") else f"{cell.mean:.{p}f}"
    return text + (f" ({cell.n}/{cell.runs})" if cell.n < cell.runs else "")


def cost_cells(cost: CostReport | None, section: Section, row: Row) -> list[str]:
    """A row's cost cells ([] without --cost; empty for Δ and published rows)."""
    if cost is None:
        return []
    cells = cost.cells(section, row.label) if row.kind == "result" else None
    return [cost_text(c.key, cells.get(c.key)) if cells is not None else "" for c in cost.columns]


def ratio_line(r: Ratio) -> str:
    """``AlexNet-Gender_Smile_Emotion_Age: 0.31x the GPU-hours ... of its 4 single-task rows (...)``."""
    if not r.against:
        return f"{r.row}: no single-task rows with the same settings to set its cost against."
    parts = [f"{value:.2f}x the {what}" for value, what in (
        (r.time_ratio, COST_BY_KEY[r.time_key].header if r.time_key else ""), (r.params_ratio, "trainable parameters"))
        if value is not None]
    n = len(r.against)
    rows = f"its {n} single-task row{'s' * (n != 1)} ({', '.join(r.against)})"
    line = (f"{r.row}: {' and '.join(parts)} of {rows}" if parts else
            f"{r.row}: no ratio: it or one of {rows} recorded no cost")
    return line + (f"; no single-task row for {', '.join(r.missing)}" if r.missing else "") + "."


def cost_total_line(t: StudyTotal) -> str:
    """The study total over the runs in the table."""
    line = (f"Study total ({t.runs} run{'s' * (t.runs != 1)} in the table): {_hours(t.gpu_hours)} GPU-hours, "
            f"{_hours(t.wall_hours)} wall-hours, {t.attempts} attempts, {t.epochs_recomputed:.2f} epochs recomputed")
    if t.sacct_gpu_hours is not None:
        line += f"; {_hours(t.sacct_gpu_hours)} GPU-hours by Slurm's accounting ({t.sacct_runs} of {t.runs} runs)"
    missing = t.runs - t.recorded
    return line + (f"; {missing} run{'s' * (missing != 1)} recorded no attempt times (not in the sums)"
                   if missing else "") + "."


def cost_ratios(report: Report, section: Section) -> list[Ratio]:
    sec = report.cost.of(section) if report.cost is not None else None
    return sec.ratios if sec is not None else []


IMAGE_TESTS = ("Per-image tests on the test split (the Δ rows' runs on the same images). Across seeds: a two-way "
               "bootstrap that resamples seeds and test images together (seeds are the unit of replication, never "
               "pooled as more images), its p Holm-adjusted over the section; per seed: McNemar for accuracies, a "
               "paired bootstrap for MAE:")


def image_test_line(t: ImageTest) -> str:
    """One Δ cell's per-image tests as text: across seeds, then each seed's own."""
    p = decimals(t.metric)
    head = f"{t.row}, {METRIC_BY_KEY[t.metric].header} vs {t.against}: {_signed(t.diff, p)}"
    if t.low is not None and t.high is not None:
        head += f" [{_signed(t.low, p)}, {_signed(t.high, p)}]"
    detail = ([t.method] + ([f"p={t.p_value:.3g}"] if t.p_value is not None else [])
              + ([f"Holm p={t.p_adjusted:.3g}"] if t.p_adjusted is not None else []) + ([t.note] if t.note else []))
    line = f"{head} ({', '.join(detail)}; {t.seeds} seed{'s' * (t.seeds != 1)}, {t.images} images)"
    seeds = "; ".join(_seed_text(one, p) for one in t.per_seed)
    return line + (f"; per seed: {seeds}" if seeds else "")


def _seed_text(one: SeedTest, p: int) -> str:
    """``seed 0: +2.5, McNemar p=0.04 (b=9 c=3)`` or ``seed 0: -0.31 [-0.80, +0.15]``."""
    text = f"seed {one.seed}: {_signed(one.diff, p)}"
    if one.low is not None and one.high is not None:
        text += f" [{_signed(one.low, p)}, {_signed(one.high, p)}]"
    if one.p_value is not None:
        text += f", {one.method.split(' (')[0]} p={one.p_value:.3g}" + (f" ({one.note})" if one.note else "")
    elif one.note:
        text += f" ({one.note})"
    return text


def reference_line(ref: Reference) -> str:
    return f"[{ref.num}] {ref.path}; epoch {ref.selected or ref.epoch}/{ref.epochs}; {ref.budget}; {ref.config}"


# -- markdown -------------------------------------------------------------------------------------
def to_markdown(report: Report) -> str:
    """The group's notes layout: a title, per section a padded pipe table and its reference list."""
    lines = [f"# {TITLE}", ""] + [x for line in smoke_lines(report) for x in (f"**{line}**", "")]
    lines += [epoch_line(report), "", count_line(report), ""]
    if report.cost is not None:
        lines += [cost_total_line(report.cost.total), "", cost_note(report.cost), ""]
    if not report.sections:
        lines += ["No finished runs to compare yet.", ""]
    for sec in report.sections:
        lines += ["", f"## {sec.title}", ""]
        lines += [x for w in sec.warnings for x in (f"> {w}", "")]
        grid = [[c.replace("|", "\\|") for c in r] for r in grid_rows(sec, report.cost)]
        widths = [max(len(r[i]) for r in grid) for i in range(len(grid[0]))]
        lines.append(_padded(grid[0], widths))
        lines.append(" | ".join("-" * w for w in widths))
        lines += [_padded(r, widths) for r in grid[1:]]
        if any(r.kind == "delta" for r in sec.rows):
            lines += ["", delta_note(report)]
        if section_notes(sec):
            lines += [""] + [f"- {x}" for x in section_notes(sec)]
        if cost_ratios(report, sec):
            lines += [""] + [f"- {ratio_line(r)}" for r in cost_ratios(report, sec)]
        if sec.image_tests:
            lines += ["", IMAGE_TESTS, ""] + [f"- {image_test_line(t)}" for t in sec.image_tests]
        lines += ["", "### reference", ""]
        for ref in sec.references:
            lines += [reference_line(ref), ""]
    if report.problems:
        lines += ["", "## runs not in the table (or counted with a note)", ""]
        lines += [f"- {p.path}: {p.state}: {p.reason}" for p in report.problems]
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def _padded(row: list[str], widths: list[int]) -> str:
    return " | ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip()


# -- CSV and JSON ---------------------------------------------------------------------------------
CSV_FIELDS = ["section", "dataset", "row", "kind", "refs", "metric", "column", "mean", "std", "n", "n_stl",
              "ci95_low", "ci95_high", "note", "p", "p_holm", "mde80", "power", "against"]
POWER_OF = {"delta": "0.8"}   # the power mde80 is stated at (delta rows)


def _num(x: float | None) -> float | None:
    return None if x is None else round(float(x), 6)


def to_csv(report: Report) -> str:
    """Tidy: one line per (row, metric) with the numbers, for pandas or a spreadsheet. No problem list."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_FIELDS)
    for sec in report.sections:
        for row in sec.rows:
            for col in sec.columns:
                c = row.cells.get(col.metric)
                if col.metric in row.refused:
                    w.writerow([sec.key, sec.dataset, row.label, row.kind, refs_text(row.refs), col.metric, col.header,
                                "", "", "", "", "", "", row.refused[col.metric], "", "", "", "",
                                row.against.get(col.metric, "")])
                if c is None:
                    continue
                vals = [sec.key, sec.dataset, row.label, row.kind, refs_text(row.refs), col.metric, col.header,
                        _num(c.mean), _num(c.std), c.n, c.n_stl, _num(c.ci_low), _num(c.ci_high), c.note,
                        _num(c.p_value), _num(c.p_adjusted), _num(c.mde), POWER_OF.get(row.kind, ""),
                        row.against.get(col.metric, "")]
                w.writerow(["" if v is None else v for v in vals])
            cells = report.cost.cells(sec, row.label) if report.cost is not None and row.kind == "result" else None
            for key, c in (cells or {}).items():
                note = f"{c.n} of {c.runs} runs recorded it" if c.n < c.runs else ""
                if COST_BY_KEY[key].agg == "max":     # the mean column holds the row's figure: here its highest
                    note = "; ".join(x for x in ("the highest over runs and attempts", note) if x)
                w.writerow([sec.key, sec.dataset, row.label, "cost", refs_text(row.refs), key, COST_BY_KEY[key].header,
                            _num(c.mean), "", c.n, "", "", "", note, "", "", "", "", ""])
        for r in cost_ratios(report, sec):
            missing = f"no single-task row for {', '.join(r.missing)}" if r.missing else ""
            for key, value in ((r.time_key, r.time_ratio), ("trainable_params", r.params_ratio)):
                if key and value is not None:
                    w.writerow([sec.key, sec.dataset, r.row, "cost ratio", "", key, "ratio to the sum of its "
                                "single-task rows", _num(value), "", "", "", "", "", missing, "", "", "", "",
                                "; ".join(r.against)])
    if report.cost is not None:
        t = report.cost.total
        for key in ("gpu_hours", "wall_hours", "epochs_recomputed"):
            w.writerow(["", "", "study total", "cost total", "", key, COST_BY_KEY[key].header,
                        _num(getattr(t, key)), "", t.recorded, "", "", "", f"{t.attempts} attempts, {t.runs} runs",
                        "", "", "", "", ""])
    return buf.getvalue()


def _plain(x: object) -> Any:
    """dataclasses/numpy -> JSON-safe builtins, floats rounded."""
    if dataclasses.is_dataclass(x):
        return {f.name: _plain(getattr(x, f.name)) for f in dataclasses.fields(x)}
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, bool) or x is None or isinstance(x, str):
        return x
    if hasattr(x, "item"):            # numpy scalars
        x = x.item()
    if isinstance(x, float):
        return round(x, 6)
    return x


def to_json(report: Report) -> str:
    """Everything in the report (sections, cells, references, problems) as indented JSON."""
    plain = _plain(report)
    if report.cost is None:   # no --cost: the same JSON as before it existed
        plain.pop("cost")
    else:                     # a peak column's figure is the highest over the row's runs, not a mean: say so
        for sec in plain["cost"]["sections"]:
            for row in sec["rows"]:
                row["cells"] = {k: ({"max" if kk == "mean" else kk: vv for kk, vv in c.items()}
                                    if COST_BY_KEY[k].agg == "max" else c) for k, c in row["cells"].items()}
    if not report.planted:    # likewise without planted runs
        plain.pop("planted")
    return json.dumps(plain, indent=2, ensure_ascii=False) + "\n"


# -- LaTeX ----------------------------------------------------------------------------------------
_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
        "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "±": r"$\pm$", "Δ": r"$\Delta$",
        "−": "--"}


def tex(text: str) -> str:
    return "".join(_TEX.get(ch, ch) for ch in text)


def to_latex(report: Report) -> str:
    """One booktabs table per section (needs \\usepackage{booktabs}); references as comments."""
    lines = [f"% {TITLE}"] + [f"% {line}" for line in smoke_lines(report)]
    lines += [f"% {tex(epoch_line(report))}", "% needs \\usepackage{booktabs}"]
    if report.cost is not None:
        lines += [f"% {tex(cost_total_line(report.cost.total))}", f"% {tex(cost_note(report.cost))}"]
    for sec in report.sections:
        grid = grid_rows(sec, report.cost)
        lines += ["", "\\begin{table}[ht]", "\\centering", f"\\caption{{{tex(sec.title)}}}",
                  "\\begin{tabular}{l" + "r" * (len(grid[0]) - 1) + "}", "\\toprule",
                  " & ".join(tex(c) for c in grid[0]) + " \\\\", "\\midrule"]
        lines += [f"% {tex(w)}" for w in sec.warnings]
        for i, (row, cells) in enumerate(zip(sec.rows, grid[1:])):
            if row.kind != "result" and i and sec.rows[i - 1].kind != row.kind:
                lines.append("\\midrule")
            lines.append(" & ".join(tex(c) for c in cells) + " \\\\")
        lines += ["\\bottomrule", "\\end{tabular}", "\\end{table}"]
        lines += [f"% {tex(x)}" for x in section_notes(sec)]
        lines += [f"% {tex(ratio_line(r))}" for r in cost_ratios(report, sec)]
        lines += [f"% {tex(image_test_line(t))}" for t in sec.image_tests]
        lines += [f"% [{r.num}] {r.path}; epoch {r.selected or r.epoch}/{r.epochs}; signature {r.signature}"
                  for r in sec.references]
    for p in report.problems:
        lines.append(f"% not in the table: {p.path}: {p.state}: {p.reason}")
    return "\n".join(lines) + "\n"


def render(report: Report, fmt: str) -> str:
    """The report as text in ``fmt``: md, csv, json or latex (html is ``html.to_html``, which builds on
    this module and draws with matplotlib)."""
    return {"md": to_markdown, "csv": to_csv, "json": to_json, "latex": to_latex}[fmt](report)


# -- rich -----------------------------------------------------------------------------------------
def cell_style(metric: str, cell: Cell | None) -> str:
    """Green/red where the section's Holm-adjusted p is below 0.05, in the good/bad direction (an interval that
    excludes zero alone is one test of many: it is not coloured)."""
    if cell is None or cell.ci_low is None or cell.ci_high is None or cell.p_adjusted is None:
        return ""
    if cell.p_adjusted >= 0.05:
        return ""
    sign = -1 if METRIC_BY_KEY[metric].lower_is_better else 1
    return "green" if sign * cell.mean > 0 else "red" if sign * cell.mean < 0 else ""


def rich_report(report: Report) -> RenderableType:
    """The terminal view: one table per section, its references, then the problem list."""
    parts: list[RenderableType] = [Text(line, style="bold yellow") for line in smoke_lines(report)]
    parts += [Text(epoch_line(report), style="dim"), Text(count_line(report), style="dim")]
    if report.cost is not None:
        parts += [Text(cost_total_line(report.cost.total), style="bold"), Text(cost_note(report.cost), style="dim")]
    for sec in report.sections:
        parts += [Text(w, style="yellow") for w in sec.warnings]
        table = Table(title=sec.title, title_justify="left", show_lines=False)
        table.add_column("model", no_wrap=True)
        for col in sec.columns:
            table.add_column(col.header, justify="right")
        for cc in report.cost.columns if report.cost is not None else ():
            table.add_column(cc.header, justify="right", style="cyan")
        for i, row in enumerate(sec.rows):
            cells = [Text(shown_text(row, c.metric), style=cell_style(c.metric, row.cells.get(c.metric)))
                     for c in sec.columns]
            cells += [Text(t) for t in cost_cells(report.cost, sec, row)]
            last_result = i + 1 < len(sec.rows) and sec.rows[i + 1].kind != row.kind
            table.add_row(Text(row_name(row), style="italic" if row.kind != "result" else ""), *cells,
                          end_section=last_result)
        parts += [Text(""), table]
        if any(r.kind == "delta" for r in sec.rows):
            parts.append(Text(delta_note(report), style="dim"))
        parts += [Text(x) for x in section_notes(sec)]
        parts += [Text(ratio_line(r)) for r in cost_ratios(report, sec)]
        if sec.image_tests:
            parts += [Text(IMAGE_TESTS, style="dim")] + [Text(f"  {image_test_line(t)}") for t in sec.image_tests]
        parts.append(Text("reference (one line each; full configs with --format md)", style="bold"))
        parts += [Text(reference_line(r), style="dim", no_wrap=True, overflow="ellipsis") for r in sec.references]
    if not report.sections:
        parts.append(Text("No finished runs to compare yet."))
    if report.problems:
        t = Table(title="runs not in the table (or counted with a note)", title_justify="left")
        for name in ("run folder", "state", "reason"):
            t.add_column(name, overflow="fold")
        for p in report.problems:
            t.add_row(Text(p.path), Text(p.state, style="green" if p.counted else "yellow"), Text(p.reason))
        parts += [Text(""), t]
    return Group(*parts)

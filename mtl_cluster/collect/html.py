"""The comparison ``Report`` as one self-contained HTML file: ``mtl-collect --format html``.

One file to open and send to a colleague, so it must work offline and anywhere: inline CSS, the forest plot
of every Δ (at the top, before the first table) and the curves as base64 ``data:`` PNGs, no script, and a
Content-Security-Policy that forbids every load except ``data:`` images (a stray external reference fails in
the browser instead of leaking a request). Every text goes through ``html.escape``. The tables are the
markdown renderer's grid (``tables.grid_rows``) and its lines (epoch rule, counts, Δ note, per-image tests,
references), so what the Report gains later shows up here as it does in markdown. Reads the runs'
metrics.jsonl for the curves (as ``--plots`` does); prints nothing.
"""
from __future__ import annotations

import base64
import io
from html import escape

from .compare import Report, Row, Section
from .scan import Problem
from .tables import (
    IMAGE_TESTS,
    TITLE,
    cell_style,
    cost_note,
    cost_ratios,
    cost_total_line,
    count_line,
    delta_note,
    epoch_line,
    grid_rows,
    image_test_line,
    ratio_line,
    reference_line,
    section_notes,
    smoke_lines,
)

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2em auto;
       max-width: 1400px; padding: 0 1.5em; color: #1d1d1f; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 2.2em; border-bottom: 1px solid #ccc; }
h3 { font-size: 1.05em; margin-top: 1.4em; }
.smoke { background: #fff3cd; border: 1px solid #e0c060; padding: .6em; font-weight: bold; }
.warning { background: #fff8e1; border-left: 4px solid #e0a000; padding: .4em .8em; }
.note, .rule, .count { color: #555; }
table { border-collapse: collapse; margin: .8em 0; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #d0d0d0; padding: .3em .6em; vertical-align: top; }
thead th { background: #f2f2f2; text-align: center; }
table.results td { text-align: right; white-space: nowrap; }
table.results tbody th { text-align: left; font-weight: normal; white-space: nowrap; }
tr.delta { font-style: italic; background: #fafafa; } tr.published { color: #666; }
tr.delta th { border-top: 2px solid #999; }
td.better { background: #dff3df; } td.worse { background: #f8dcdc; }
figure { margin: 1em 0; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: .9em; }
figure.forest { margin: 1.2em 0 1.6em; }
ul.references { list-style: none; padding-left: 0; font-size: .85em; }
ul.references li { margin: .3em 0; overflow-wrap: anywhere; }
code { font-family: ui-monospace, "DejaVu Sans Mono", monospace; }
table.problems td { overflow-wrap: anywhere; } table.problems td.state { white-space: nowrap; }
"""
CELL_CLASS = {"green": "better", "red": "worse"}


def to_html(report: Report) -> str:
    """The whole page; the curves are drawn from the runs' metrics.jsonl (paths as the Report has them)."""
    images, curve_problems = _curves(report)
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           f'<meta http-equiv="Content-Security-Policy" content="{escape(CSP)}">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f"<title>{escape(TITLE)}</title>", f"<style>{CSS}</style>", "</head>", "<body>",
           f"<h1>{escape(TITLE)}</h1>"]
    out += [_p(line, "smoke") for line in smoke_lines(report)]
    out += [_p(epoch_line(report), "rule"), _p(count_line(report), "count")]
    if report.cost is not None:
        out += [_p(cost_total_line(report.cost.total), "count"), _p(cost_note(report.cost), "note")]
    out += _forest(report)
    if not report.sections:
        out.append(_p("No finished runs to compare yet."))
    for i, sec in enumerate(report.sections, 1):
        out += _section(report, sec, i, images.get(i, []))
    problems = report.problems + [p for p in curve_problems if p.path not in {q.path for q in report.problems}]
    if problems:
        out += _problems(problems)
    out += ["</body>", "</html>"]
    return "\n".join(out) + "\n"


def _p(text: str, cls: str = "") -> str:
    return f'<p class="{cls}">{escape(text)}</p>' if cls else f"<p>{escape(text)}</p>"


def _section(report: Report, sec: Section, i: int, images: list[tuple[str, str]]) -> list[str]:
    out = [f'<section id="section-{i}">', f"<h2>{escape(sec.title)}</h2>"]
    out += [_p(w, "warning") for w in sec.warnings]
    out += _table(sec, report)
    if any(r.kind == "delta" for r in sec.rows):
        out.append(_p(delta_note(report) + " Green/red: multitask better/worse.", "note"))
    out += [_p(line, "note") for line in section_notes(sec)]
    if cost_ratios(report, sec):
        out += ['<ul class="cost">', *(f"<li>{escape(ratio_line(r))}</li>" for r in cost_ratios(report, sec)), "</ul>"]
    if sec.image_tests:
        out += ["<h3>Per-image tests</h3>", _p(IMAGE_TESTS, "note"), "<ul>"]
        out += [f"<li>{escape(image_test_line(t))}</li>" for t in sec.image_tests]
        out.append("</ul>")
    if images:
        out.append("<h3>Validation curves (solid = multitask, dashed = single-task)</h3>")
        for task, uri in images:
            alt = f"validation curves of {task}: {sec.title}"
            out.append(f'<figure><img src="{uri}" alt="{escape(alt)}"><figcaption>{escape(task)}</figcaption>'
                       "</figure>")
    out += ["<h3>reference</h3>", '<ul class="references">']
    out += [f"<li><code>{escape(reference_line(r))}</code></li>" for r in sec.references]
    out += ["</ul>", "</section>"]
    return out


def _table(sec: Section, report: Report) -> list[str]:
    """The markdown grid as an HTML table: the first row is the header, the first cell of a row its name.
    Cells beyond the metrics' (the cost columns of --cost) are rendered plain."""
    grid = grid_rows(sec, report.cost)
    out = ['<table class="results">', "<thead><tr>" + "".join(f"<th>{escape(c)}</th>" for c in grid[0])
           + "</tr></thead>", "<tbody>"]
    for k, cells in enumerate(grid[1:]):
        row = sec.rows[k] if k < len(sec.rows) else None
        tds = [_td(sec, row, j, text) for j, text in enumerate(cells[1:])]
        kind = f' class="{escape(row.kind)}"' if row is not None else ""
        out.append(f'<tr{kind}><th scope="row">{escape(cells[0])}</th>{"".join(tds)}</tr>')
    out += ["</tbody>", "</table>"]
    return out


def _td(sec: Section, row: Row | None, j: int, text: str) -> str:
    cls = ""
    if row is not None and j < len(sec.columns):
        metric = sec.columns[j].metric
        cls = CELL_CLASS.get(cell_style(metric, row.cells.get(metric)), "")
    return f'<td class="{cls}">{escape(text)}</td>' if cls else f"<td>{escape(text)}</td>"


def _problems(problems: list[Problem]) -> list[str]:
    out = ['<section id="problems">', "<h2>runs not in the table (or counted with a note)</h2>",
           '<table class="problems">', "<thead><tr><th>run folder</th><th>state</th><th>in the table</th>"
           "<th>reason</th></tr></thead>", "<tbody>"]
    for p in problems:
        out.append(f'<tr><td><code>{escape(p.path)}</code></td><td class="state">{escape(p.state)}</td>'
                   f"<td>{'yes, with a note' if p.counted else 'no'}</td><td>{escape(p.reason)}</td></tr>")
    out += ["</tbody>", "</table>", "</section>"]
    return out


FOREST_ALT = ("Forest plot: every multitask-minus-single-task difference (Δ) of the study as a point with its 95% "
              "interval, by section and task; accuracies in percentage points, age MAE in years")
FOREST_CAPTION = ("Every Δ (multitask − single-task) with its 95% interval, one panel per unit; green/red: "
                  "Holm-adjusted p < 0.05 with multitask better/worse, grey: not significant or no p, "
                  "hollow: no interval.")


def _forest(report: Report) -> list[str]:
    """The forest plot of the study's Δ cells as a figure (nothing when the report has none)."""
    from .plots import forest_png

    png = forest_png(report)
    if png is None:
        return []
    uri = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    return [f'<figure class="forest" id="forest"><img src="{uri}" alt="{escape(FOREST_ALT)}">'
            f"<figcaption>{escape(FOREST_CAPTION)}</figcaption></figure>"]


def _curves(report: Report) -> tuple[dict[int, list[tuple[str, str]]], list[Problem]]:
    """Section number -> [(task, PNG data URI)], drawn in memory by plots.curve_figures."""
    from .plots import DPI, curve_figures

    problems: list[Problem] = []
    images: dict[int, list[tuple[str, str]]] = {}
    number = {id(s): i for i, s in enumerate(report.sections, 1)}
    for sec, task, fig in curve_figures(report, problems):
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=DPI)
        uri = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
        images.setdefault(number[id(sec)], []).append((task, uri))
    return images, sorted(problems, key=lambda p: p.path)

"""What each row of the comparison cost (``mtl-collect --cost``): trainable parameters, GPU-hours, wall-hours,
images/s at train time and epochs recomputed after interruptions, as a mean per run over the row's seeds;
each multitask row against the sum of its single-task rows; a study total.

Why: multitask learning's other argument is efficiency (one trunk serves four tasks), which an accuracy
table cannot show. Every figure comes from the run's own records (the ``rundir`` contract): summary.json
``trainable_params``, attempts.jsonl (each attempt's start, resume point, GPUs and end) and timings.jsonl
(per epoch). A run from before these records gets no figure (the table shows a dash), never a guess.
Beside them, where Slurm's accounting answers (``add_cost``'s ``accounted``, which the CLI gives
``accounting.usage``), **GPU-hours (sacct)**: what Slurm billed each of the run's jobs (attempts.jsonl
names them), elapsed time x allocated GPUs, requeues included; **MaxRSS MiB (sacct)** beside the run's own peak
(the whole job's steps: wrapper and workers too); **CPU used (%, sacct)**: TotalCPU over elapsed x CPUs held.
Those columns show only when some run has them, and a run with a job sacct does not know gets none of them.
Reads, never writes, never prints.

Wall time of an attempt: its ``start`` line to its ``end`` line; an attempt killed without one (SIGKILL,
a node failure) ends at its last sign of life: its last epoch line, its resume line, or status.json's
``updated_at`` as the next attempt found it (refreshed every 10 s while training), whichever is latest.
GPU-hours weight each attempt's wall time by the GPUs its job held (0 on a CPU).

Use against limits (optional columns, shown once some run recorded them: attempts.jsonl ``end`` ``usage`` and
``start`` ``slurm``): **Peak host MiB** (the trainer process's peak resident memory plus its largest reaped
child's, i.e. a DataLoader worker), **Time limit used (%)** (an attempt's seconds over its Slurm job's time
limit), **Peak GPU MiB** (torch's peak allocation): each the highest over the row's runs and attempts, since a
limit must fit the worst; **GPU util (%)** the mean. A run without the records has no figure, not a guess.

Epochs recomputed: progress is epoch + step / steps_per_epoch. Each attempt trained from its resume point
to the point it reached (its end line, else the next attempt's record of status.json's progress, else its
last epoch line); that work summed, less the run's final progress, is what was trained more than once
(steps since the last 10-second status refresh of a killed attempt are not seen).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterable, TypeGuard

import pandas as pd

from ..rundir import RunDir, read_jsonl
from ..tasks import COST_COLUMNS, TASKS, CostColumn
from .compare import Report, Section

COST_KEYS: tuple[str, ...] = tuple(c.key for c in COST_COLUMNS)
TIME_KEYS = ("gpu_hours", "wall_hours")   # what a ratio compares: GPU time, or wall time where a side has none


@dataclass(frozen=True)
class RunCost:
    """One run's figures; None where the run did not record what it takes."""

    trainable_params: float | None = None
    gpu_hours: float | None = None
    wall_hours: float | None = None
    images_per_s: float | None = None
    epochs_recomputed: float | None = None
    attempts: int | None = None
    job_ids: tuple[str, ...] = ()              # the Slurm jobs of its attempts (attempts.jsonl), oldest first
    sacct_gpu_hours: float | None = None       # set by add_cost where accounting answers for every one of them
    sacct_rss_mib: float | None = None         # so is sacct's MaxRSS (the highest of its jobs' steps)
    sacct_cpu_used: float | None = None        # and TotalCPU / (elapsed x CPUs), %
    host_peak_mib: float | None = None         # the usage records (attempts.jsonl end): the highest over attempts
    limit_used: float | None = None            # % of the Slurm time limit, the highest over attempts
    gpu_peak_mib: float | None = None
    gpu_util: float | None = None              # mean %, weighted by the attempts' seconds
    time_limit_s: float | None = None          # the limits its jobs ran under (attempts.jsonl start slurm), highest
    mem_limit_mib: float | None = None


Accounted = Callable[[Iterable[str]], "dict[str, dict[str, float]] | None"]
"""job ids -> what Slurm accounted for each (``accounting.usage``: ``gpu_s``, ``cpu_s``, ``cpu_held_s``, and
``max_rss_mib`` where a step has one; a job it does not know left out), or None: no answer."""


@dataclass
class CostCell:
    """A row's mean of one figure over the ``n`` of its ``runs`` runs (seeds) that recorded it."""

    mean: float
    n: int
    runs: int


@dataclass
class RowCost:
    row: str                          # the result row's label
    cells: dict[str, CostCell]        # cost key -> cell; a key missing = no run of the row recorded it


@dataclass
class Ratio:
    """A multitask row's cost over the sum of its single-task rows' (each a mean per run)."""

    row: str
    against: list[str]                # the single-task rows (those its Δ row compares with)
    missing: list[str]                # its tasks without a single-task row
    time_key: str | None = None       # "gpu_hours", or "wall_hours" where a side used no GPU
    time_ratio: float | None = None
    params_ratio: float | None = None


@dataclass
class SectionCost:
    key: str                          # the Section's key and dataset: which table these rows belong to
    dataset: str
    rows: list[RowCost]
    ratios: list[Ratio] = field(default_factory=list)


@dataclass
class StudyTotal:
    """Sums over the runs in the table (runs not in it are not read)."""

    runs: int
    recorded: int                     # runs with attempt records (the others add nothing to the sums)
    attempts: int
    gpu_hours: float
    wall_hours: float
    epochs_recomputed: float
    sacct_gpu_hours: float | None = None   # over the runs sacct accounted for (None: none of them)
    sacct_runs: int = 0


@dataclass
class CostReport:
    sections: list[SectionCost]
    total: StudyTotal

    @property
    def columns(self) -> tuple[CostColumn, ...]:
        """The cost columns of the table: every one, but an optional one only when some row has it."""
        present = {k for sec in self.sections for r in sec.rows for k in r.cells}
        return tuple(c for c in COST_COLUMNS if not c.optional or c.key in present)

    def of(self, section: Section) -> SectionCost | None:
        """The cost part of one of the report's sections."""
        return next((s for s in self.sections if (s.key, s.dataset) == (section.key, section.dataset)), None)

    def cells(self, section: Section, row: str) -> dict[str, CostCell] | None:
        """A result row's cells; None for a row that is not a result row (Δ, published)."""
        sec = self.of(section)
        return next((r.cells for r in sec.rows if r.row == row), None) if sec else None


# -- the report -----------------------------------------------------------------------------------
def add_cost(report: Report, frame: pd.DataFrame, accounted: Accounted | None = None) -> None:
    """Set ``report.cost`` from the counted runs' folders (``frame``: collect.load_runs().frame); ``accounted``
    (e.g. ``accounting.gpu_seconds``) adds Slurm's figure for runs whose every job it knows."""
    runs = {str(r.path): run_cost(Path(r.folder), r.trainable_params) for r in frame.itertuples(index=False)}
    if accounted is not None:
        runs = with_accounting(runs, accounted)
    sections = []
    for sec in report.sections:
        refs = {ref.num: ref.path for ref in sec.references}
        rows = [RowCost(row.label, row_cells([runs[refs[n]] for n in row.refs]))
                for row in sec.rows if row.kind == "result"]
        sections.append(SectionCost(sec.key, sec.dataset, rows, _ratios(sec, {r.row: r.cells for r in rows})))
    report.cost = CostReport(sections, study_total(runs.values()))


def with_accounting(runs: dict[str, RunCost], accounted: Accounted) -> dict[str, RunCost]:
    """The runs with Slurm's figures (GPU-hours, MaxRSS, CPU used) where it accounted for every job of theirs
    (one query for all): never a partial sum."""
    ids = {j for r in runs.values() for j in r.job_ids}
    found = accounted(sorted(ids)) if ids else None
    if not found:
        return runs
    out = {}
    for key, run in runs.items():
        jobs = [found[j] for j in run.job_ids if j in found]
        if not run.job_ids or len(jobs) != len(run.job_ids):
            out[key] = run
            continue
        rss = [j["max_rss_mib"] for j in jobs if "max_rss_mib" in j]
        held = sum(j.get("cpu_held_s", 0.0) for j in jobs)
        out[key] = dataclasses.replace(run, sacct_gpu_hours=sum(j.get("gpu_s", 0.0) for j in jobs) / 3600,
                                       sacct_rss_mib=max(rss) if rss else None,
                                       sacct_cpu_used=100 * sum(j.get("cpu_s", 0.0) for j in jobs) / held
                                       if held else None)
    return out


def row_cells(runs: list[RunCost]) -> dict[str, CostCell]:
    """Per cost key, the mean over the runs that recorded it."""
    out = {}
    for col in COST_COLUMNS:
        values = [v for v in (getattr(r, col.key) for r in runs) if v is not None]
        if values:
            figure = max(values) if col.agg == "max" else sum(values) / len(values)
            out[col.key] = CostCell(mean=figure, n=len(values), runs=len(runs))
    return out


def _ratios(sec: Section, cells: dict[str, dict[str, CostCell]]) -> list[Ratio]:
    """Each multitask row against the single-task rows its Δ row was computed against."""
    out = []
    for row in sec.rows:
        if row.kind != "result" or len(row.tasks) < 2:
            continue
        delta = next((d for d in sec.rows if d.kind == "delta" and d.refs == row.refs), None)
        against = list(dict.fromkeys(delta.against.values())) if delta else []
        tasks = {t for r in sec.rows if r.kind == "result" and r.label in against for t in r.tasks}
        ratio = Ratio(row.label, against, [t for t in TASKS if t in row.tasks and t not in tasks])
        if against:
            sides = [cells[row.label]] + [cells[a] for a in against]
            ratio.time_key = next((k for k in TIME_KEYS if _sum_of(sides[1:], k)), None)
            ratio.time_ratio = _ratio(sides, ratio.time_key)
            ratio.params_ratio = _ratio(sides, "trainable_params")
        out.append(ratio)
    return out


def _sum_of(sides: list[dict[str, CostCell]], key: str) -> float:
    """The sum of ``key`` over the rows, 0 when one of them lacks it."""
    return sum(s[key].mean for s in sides) if all(key in s for s in sides) else 0.0


def _ratio(sides: list[dict[str, CostCell]], key: str | None) -> float | None:
    if key is None or key not in sides[0] or not _sum_of(sides[1:], key):
        return None
    return sides[0][key].mean / _sum_of(sides[1:], key)


def study_total(runs: Iterable[RunCost]) -> StudyTotal:
    runs = list(runs)
    rec = [r for r in runs if r.wall_hours is not None]
    billed = [r.sacct_gpu_hours for r in runs if r.sacct_gpu_hours is not None]
    return StudyTotal(runs=len(runs), recorded=len(rec), attempts=sum(r.attempts or 0 for r in rec),
                      gpu_hours=sum(r.gpu_hours or 0.0 for r in rec), wall_hours=sum(r.wall_hours or 0.0 for r in rec),
                      epochs_recomputed=sum(r.epochs_recomputed or 0.0 for r in rec),
                      sacct_gpu_hours=sum(billed) if billed else None, sacct_runs=len(billed))


# -- one run --------------------------------------------------------------------------------------
def run_cost(folder: Path, params: object = None) -> RunCost:
    """One run folder's figures (``params``: summary.json's trainable_params, as the collector read it)."""
    rd = RunDir(Path(folder))
    params = params.item() if hasattr(params, "item") else params   # a numpy scalar from the frame
    epochs = [r for r in read_jsonl(rd.timings_file) if _number(r.get("epoch"))]
    lines = read_jsonl(rd.attempts_file)
    wall, gpu, attempts, recomputed = attempt_costs(lines, epochs)
    jobs = tuple(dict.fromkeys(str(r["job_id"]) for r in lines if r.get("event") == "start"
                               and isinstance(r.get("job_id"), str) and r["job_id"]))
    return RunCost(trainable_params=float(params) if _number(params) else None, gpu_hours=gpu, wall_hours=wall,
                   images_per_s=images_per_s(epochs), epochs_recomputed=recomputed, attempts=attempts, job_ids=jobs,
                   **usage_figures(lines, epochs))


def usage_figures(lines: list[dict[str, object]], epochs: list[dict[str, object]]) -> dict[str, float | None]:
    """RunCost's use-against-limits fields from attempts.jsonl: peaks (the highest over attempts), the share of the
    time limit (an attempt's own ``elapsed_s``, else its wall time as ``attempt_costs`` reckons it for an attempt
    killed without an end line), the limits themselves, the mean GPU utilisation weighted by seconds."""
    host, share, gpu_peak, util, limits, mems = [], [], [], [], [], []
    for a, seconds in _walls(_attempts(lines), epochs):
        used = a.get("end", {}).get("usage")
        used = used if isinstance(used, dict) else {}
        slurm = a["start"].get("slurm")
        slurm = slurm if isinstance(slurm, dict) else {}
        elapsed = _float(used.get("elapsed_s"))
        elapsed = elapsed if elapsed is not None else seconds
        if _float(used.get("host_peak_mib")) is not None:
            host.append(float(used["host_peak_mib"]) + (_float(used.get("children_peak_mib")) or 0.0))
        limit = _float(slurm.get("time_limit_s"))
        if limit:
            limits.append(limit)
            share.append(100.0 * elapsed / limit)
        if _float(slurm.get("mem_mib")):
            mems.append(float(slurm["mem_mib"]))
        if _float(used.get("gpu_peak_mib")) is not None:
            gpu_peak.append(float(used["gpu_peak_mib"]))
        if _float(used.get("gpu_util_mean")) is not None:
            util.append((float(used["gpu_util_mean"]), max(elapsed, 1e-9)))
    return {"host_peak_mib": max(host, default=None), "limit_used": max(share, default=None),
            "gpu_peak_mib": max(gpu_peak, default=None),
            "gpu_util": sum(u * w for u, w in util) / sum(w for _, w in util) if util else None,
            "time_limit_s": max(limits, default=None), "mem_limit_mib": max(mems, default=None)}


def images_per_s(epochs: list[dict[str, Any]]) -> float | None:
    """Training images over epoch seconds, all epochs (trained twice or not) weighted by their length."""
    done = [(r["train_images_per_s"] * r["seconds"], r["seconds"]) for r in epochs
            if _number(r.get("train_images_per_s")) and _number(r.get("seconds")) and r["seconds"] > 0]
    return sum(n for n, _ in done) / sum(s for _, s in done) if done else None


def attempt_costs(lines: list[dict[str, Any]],
                  epochs: list[dict[str, Any]]) -> tuple[float | None, float | None, int | None, float | None]:
    """(wall-hours, GPU-hours, attempts, epochs recomputed) from attempts.jsonl and timings.jsonl's epoch
    lines; all None without attempt records. See the module doc for the rules."""
    attempts = _attempts(lines)
    if not attempts:
        return None, None, None, None
    known_gpus = [float(a["resume"]["gpus"]) for a in attempts if _number(a.get("resume", {}).get("gpus"))]
    wall = gpu = work = final = 0.0
    gpu_known = True
    for i, a in enumerate(attempts):
        later, mine = _context(attempts, i, epochs)
        seconds = max(0.0, _end(a, mine, later) - float(a["start"]["at"]))
        gpus = _float(a["resume"].get("gpus")) if "resume" in a else max(known_gpus, default=None)
        wall += seconds
        if gpus is not None:
            gpu += seconds * gpus
        else:
            gpu_known = False
        per = _float(a.get("resume", {}).get("steps_per_epoch"))
        if per:
            begin = _progress(a["resume"], per)
            reached = max([begin, _progress(a.get("end", {}), per), _progress(later, per),
                           *(float(r["epoch"]) for r in mine)])
            work += reached - begin
            final = max(final, reached)
    return wall / 3600, (gpu / 3600 if gpu_known else None), len(attempts), max(0.0, work - final)


def _context(attempts: list[dict[str, dict[str, Any]]], i: int,
             epochs: list[dict[str, Any]]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Attempt i's successor's record of how far it got (status.json's progress, {} for the last) and its epochs."""
    a = attempts[i]
    later = attempts[i + 1]["start"].get("previous") if i + 1 < len(attempts) else None
    later = later if isinstance(later, dict) else {}
    until = attempts[i + 1]["start"]["at"] if i + 1 < len(attempts) else math.inf
    mine = [r for r in epochs if r.get("attempt") == a["start"]["attempt"]
            and a["start"]["at"] <= (r["at"] if _number(r.get("at")) else a["start"]["at"]) < until]
    return later, mine


def _walls(attempts: list[dict[str, dict[str, Any]]],
           epochs: list[dict[str, Any]]) -> list[tuple[dict[str, dict[str, Any]], float]]:
    """Each attempt with its wall seconds, start to end (or its last sign of life)."""
    out = []
    for i, a in enumerate(attempts):
        later, mine = _context(attempts, i, epochs)
        out.append((a, max(0.0, _end(a, mine, later) - float(a["start"]["at"]))))
    return out


def _attempts(lines: list[dict[str, Any]]) -> list[dict[str, dict[str, Any]]]:
    """attempts.jsonl in file order, one {"start", "resume", "end"} per attempt: a start line opens one (by order,
    not number: numbers repeat when status.json was lost), its resume and end lines follow it."""
    out: list[dict[str, dict[str, Any]]] = []
    for r in lines:
        if not (_number(r.get("at")) and _number(r.get("attempt"))):
            continue
        if r.get("event") == "start":
            out.append({"start": r})
        elif r.get("event") in ("resume", "end") and out and out[-1]["start"]["attempt"] == r["attempt"]:
            out[-1][str(r["event"])] = r
    return out


def _end(attempt: dict[str, dict[str, Any]], mine: list[dict[str, Any]], later: dict[str, Any]) -> float:
    """When an attempt ended: its end line, else its last sign of life."""
    if "end" in attempt:
        return float(attempt["end"]["at"])
    seen = [float(r["at"]) for r in mine if _number(r.get("at"))]
    seen += [float(attempt["resume"]["at"])] if "resume" in attempt else []
    heartbeat = _timestamp(later.get("updated_at"))
    return max(seen + ([heartbeat] if heartbeat is not None else []), default=-math.inf)


def _progress(rec: dict[str, Any], steps_per_epoch: float) -> float:
    """epoch + step / steps_per_epoch of a record holding ``epoch`` and ``step`` (0 without them)."""
    return (_float(rec.get("epoch")) or 0.0) + (_float(rec.get("step")) or 0.0) / steps_per_epoch


def _timestamp(text: object) -> float | None:
    """status.json's ``updated_at`` (rundir.now_iso) as epoch seconds."""
    try:
        return datetime.strptime(str(text), "%Y-%m-%dT%H:%M:%S%z").timestamp() if text else None
    except ValueError:
        return None


def _float(value: object) -> float | None:
    return float(value) if _number(value) else None


def _number(value: object) -> TypeGuard[float]:
    """A finite int or float (not a bool): a figure a record may hold."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)

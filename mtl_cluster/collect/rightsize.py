"""Right-sizing (``mtl-collect --right-size``): per experiment, the Slurm limits its runs' measured use calls for.

From the usage records (attempts.jsonl, read by ``cost.run_cost``): ``timeout_min`` = TIME_MARGIN x the longest
run's wall time (all its attempts: what one job must hold for the run to finish without a requeue), rounded up to
TIME_STEP_MIN minutes; ``mem_gb`` = MEM_MARGIN x the highest peak host memory of an attempt (the trainer plus its
largest DataLoader worker), rounded up to whole GB. Beside each, the limit the runs ran under where Slurm said
(their start lines' ``slurm``). Why: shorter limits start sooner (the scheduler backfills short jobs into gaps
before a reservation), and a smaller memory request fits on more nodes. A proposal, not a change: nothing is
written unless ``--write-resources STUDY`` (``launch/resize.py``) puts it under the experiments' ``resources:``.

Pure apart from reading the counted runs' attempts.jsonl; prints nothing.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from .compare import Report
from .cost import RunCost, run_cost

TIME_MARGIN = 1.5
TIME_STEP_MIN = 10
MEM_MARGIN = 1.25
MEM_STEP_GB = 1
WHY = (f"Right-size (a proposal from the runs' own records; nothing is written unless --write-resources): "
       f"timeout_min = {TIME_MARGIN:g} x the longest run's wall time over all its attempts, rounded up to "
       f"{TIME_STEP_MIN} min; mem_gb = {MEM_MARGIN:g} x "
       f"the highest peak host memory of an attempt (trainer + largest DataLoader worker), rounded up to "
       f"{MEM_STEP_GB} GB. Shorter limits start sooner (the scheduler backfills short jobs), smaller memory fits "
       f"more nodes; --write-resources experiments.yaml puts them under each experiment's resources:.")


@dataclass(frozen=True)
class Proposal:
    section: str
    row: str
    runs: int                          # the row's runs (seeds)
    timed: int                         # of them, with attempt times
    measured: int                      # of them, with peak memory
    longest_s: float | None            # the longest run's wall time, seconds
    peak_mib: float | None             # the highest peak host memory, MiB
    limit_min: float | None            # the time limit its jobs ran under (the highest), minutes
    mem_gb: float | None               # the memory its jobs ran with (the highest), GB
    timeout_min: int | None            # proposed
    new_mem_gb: int | None             # proposed
    paths: tuple[str, ...] = ()        # the row's runs (the frame's ``path``): which experiment it is


def propose_timeout(longest_s: float) -> int:
    """TIME_MARGIN x the seconds, in minutes rounded up to TIME_STEP_MIN (at least one step)."""
    return max(TIME_STEP_MIN, math.ceil(TIME_MARGIN * longest_s / 60 / TIME_STEP_MIN) * TIME_STEP_MIN)


def propose_mem_gb(peak_mib: float) -> int:
    """MEM_MARGIN x the peak, in GB rounded up to MEM_STEP_GB (at least one step)."""
    return max(MEM_STEP_GB, math.ceil(MEM_MARGIN * peak_mib / 1024 / MEM_STEP_GB) * MEM_STEP_GB)


def proposals(report: Report, frame: pd.DataFrame) -> list[Proposal]:
    """One proposal per result row of the report (``frame``: collect.load_runs().frame, the counted runs)."""
    runs = {str(r.path): run_cost(Path(r.folder)) for r in frame.itertuples(index=False)}
    out = []
    for sec in report.sections:
        refs = {ref.num: ref.path for ref in sec.references}
        for row in (r for r in sec.rows if r.kind == "result"):
            paths = tuple(refs[n] for n in row.refs)
            out.append(propose(sec.title, row.label, [runs[p] for p in paths], paths))
    return out


def propose(section: str, row: str, runs: list[RunCost], paths: tuple[str, ...] = ()) -> Proposal:
    walls = [r.wall_hours * 3600 for r in runs if r.wall_hours is not None]
    peaks = [r.host_peak_mib for r in runs if r.host_peak_mib is not None]
    limits = [r.time_limit_s / 60 for r in runs if r.time_limit_s is not None]
    mems = [r.mem_limit_mib / 1024 for r in runs if r.mem_limit_mib is not None]
    longest, peak = max(walls, default=None), max(peaks, default=None)
    return Proposal(section, row, len(runs), len(walls), len(peaks), longest, peak, max(limits, default=None),
                    max(mems, default=None), propose_timeout(longest) if longest is not None else None,
                    propose_mem_gb(peak) if peak is not None else None, paths)


def _num(x: Any) -> str:
    return "?" if x is None else f"{x:g}" if isinstance(x, int) or float(x).is_integer() else f"{x:.1f}"


def proposal_line(p: Proposal) -> str:
    """``section / row: timeout_min 2880 -> 60 (longest run 0.61 h of 3); mem_gb 40 -> 3 (peak 2,130 MiB of 3)``."""
    if p.longest_s is None and p.peak_mib is None:
        return f"{p.section} / {p.row}: no usage records (its {p.runs} run{'s' * (p.runs != 1)} are from before them)"
    parts = []
    if p.timeout_min is not None and p.longest_s is not None:
        took = f"{p.longest_s / 3600:.2f} h" if p.longest_s >= 3600 else f"{p.longest_s / 60:.1f} min"
        parts.append(f"timeout_min {_num(p.limit_min)} -> {p.timeout_min} (longest run {took}, "
                     f"{p.timed} of {p.runs} runs timed)")
    if p.new_mem_gb is not None and p.peak_mib is not None:
        parts.append(f"mem_gb {_num(p.mem_gb)} -> {p.new_mem_gb} (peak {p.peak_mib:,.0f} MiB, "
                     f"{p.measured} of {p.runs} runs measured)")
    else:
        parts.append("mem_gb: no peak memory recorded")
    return f"{p.section} / {p.row}: " + "; ".join(parts)


def right_size_lines(report: Report, frame: pd.DataFrame) -> list[str]:
    """What ``mtl-collect --right-size`` prints: the rule and why, then one line per experiment; "?" where the
    runs' limit is unknown (outside Slurm, or from before the records)."""
    return [WHY, *(proposal_line(p) for p in proposals(report, frame))]

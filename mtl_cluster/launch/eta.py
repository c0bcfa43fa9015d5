"""When the study ends: the finish time of its last run, from what is measured and what Slurm says.

Each running run ends at its own ETA (status.eta_seconds: its epochs' times, or its measured step time
before its first epoch ends). Each queued run takes as long as its experiment's runs have taken per epoch
(timings.jsonl of the grid's runs; any run's when its experiment has none yet; else a running run's step
time) times its epochs. Queued runs start, in the grid's order, when a slot of their array frees up (the
array's parallelism: the launch's, or the last ``--throttle``), and not before the run they fine-tune from
ends. Slurm's own expected start (squeue --start, shown with the pending reasons) is not used: it assumes every
running job uses its whole time limit. Runs with no job (new, died, interrupted) are not counted, nor held jobs
(``scontrol hold``: they start when someone releases them) and the fine-tunes that wait on one: the line says
how many. Reads run folders, never writes, never prints.
"""
from __future__ import annotations

import heapq
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from ..rundir import RunDir, count_field, read_jsonl
from ..states import State
from .status import RunStatus

HELD = ("JobHeldUser", "JobHeldAdmin")   # squeue's reasons for a job that waits for a release, not a slot


@dataclass(frozen=True)
class StudyEta:
    finish: float | None     # epoch seconds the last counted run should end (None: nothing to go by)
    running: int
    queued: int
    arrays: int
    not_counted: int         # runs with no live job and not finished (new, died, interrupted, unknown)
    rough: bool              # a figure from a step time or another experiment's epochs
    held: int = 0            # queued runs whose job is held (or whose parent's is): no start to reckon with


def _epoch_seconds(spec_dir: Path) -> list[float]:
    return [float(r["seconds"]) for r in read_jsonl(RunDir(spec_dir).timings_file)
            if isinstance(r.get("seconds"), (int, float)) and not isinstance(r.get("seconds"), bool)
            and r["seconds"] > 0]


def study_eta(statuses: Sequence[RunStatus], parallelism: Mapping[str, int], now: float | None = None) -> StudyEta:
    """The study's end: ``statuses`` in the grid's order (parents first); ``parallelism``: array job id -> tasks
    at once (throttle.parallelism)."""
    now = time.time() if now is None else now
    by_name: dict[str, list[float]] = {}
    for st in statuses:
        by_name.setdefault(st.spec.name, []).extend(_epoch_seconds(st.spec.run_dir))
    everything = [s for v in by_name.values() for s in v]
    rough = False

    def epoch_s(st: RunStatus) -> tuple[float | None, bool]:
        mine = by_name.get(st.spec.name) or []
        if mine:
            return sum(mine[-3:]) / len(mine[-3:]), False
        if everything:
            return sum(everything) / len(everything), True
        for other in statuses:                   # a running run's measured step time, before any epoch ended
            status = RunDir(other.spec.run_dir).read_status() if other.state == State.RUNNING else {}
            per, steps = status.get("step_seconds"), count_field(status, "steps")
            if isinstance(per, (int, float)) and not isinstance(per, bool) and per > 0 and steps:
                return per * steps, True
        return None, True

    end: dict[Path, float] = {}
    slots: dict[str, list[float]] = {}
    running = queued = 0
    unknown = False
    for st in statuses:
        if st.state != State.RUNNING:
            continue
        running += 1
        eta = st.eta_s
        if eta is None:
            per, _ = epoch_s(st)
            eta, rough = (per * max(1, (st.epochs or 1) - (st.epoch or 0)), True) if per else (None, rough)
        rough = rough or st.eta_rough
        if eta is None:
            unknown = True
            continue
        end[st.spec.run_dir] = now + eta
        if st.job_id:
            slots.setdefault(st.job_id.split("_")[0], []).append(now + eta)
    held: set[Path] = set()
    for st in statuses:
        if st.state != State.QUEUED or not st.job_id:
            continue
        if st.reason in HELD or (st.spec.init_run_dir is not None and st.spec.init_run_dir in held):
            held.add(st.spec.run_dir)
            continue
        queued += 1
        array = st.job_id.split("_")[0]
        heap = slots.setdefault(array, [])
        width = parallelism.get(array, 0)
        if width and len(heap) >= width:
            heapq.heapify(heap)
            free = heapq.heappop(heap)
        else:
            free = now
        parent = end.get(st.spec.init_run_dir, now) if st.spec.init_run_dir else now
        begin = max(now, free, parent)
        per, r = epoch_s(st)
        rough = rough or r
        if per is None:
            unknown = True
            heap.append(begin)
            continue
        end[st.spec.run_dir] = begin + per * max(1, (st.epochs or 1) - (st.epoch or 0))
        heap.append(end[st.spec.run_dir])
    live = {State.RUNNING, State.QUEUED, State.COMPLETED, State.FAILED}
    not_counted = sum(1 for st in statuses if st.state not in live or (st.state == State.QUEUED and not st.job_id))
    arrays = len({st.job_id.split("_")[0] for st in statuses if st.job_id and st.state in (State.RUNNING,
                                                                                              State.QUEUED)})
    return StudyEta(None if unknown or not end else max(end.values()), running, queued, arrays, not_counted, rough,
                    len(held))

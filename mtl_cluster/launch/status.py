"""The state of every run of a grid, from its run folder plus the job the ledger gave it.

The run folder (status.json, written by the trainer) says how far the run got; Slurm says whether a
job is still on it. Together they tell a run that is queued or running from one whose job died
without a word (scancel, node failure, OOM: status.json still says ``running``), which the next
``mtl-launch`` resumes from its checkpoint. Reads, never writes, never prints.
"""
from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Mapping, Sequence

from ..rundir import RunDir, count_field, read_jsonl
from ..states import LIVE_STATES, Action, Kind, State
from ..tasks import METRICS
from .grid import RunSpec
from .ledger import JobRef
from .reasons import Reason, code_of, explain, start_text
from .slurmq import GONE, LIVE, NEVER, UNKNOWN


@dataclass(frozen=True)
class RunStatus:
    """One row of mtl-status and of the launch plan."""

    spec: RunSpec
    state: State
    detail: str = ""
    epoch: int | None = None
    epochs: int | None = None
    step: int | None = None            # within the epoch being trained (status.json, every few seconds)
    steps: int | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    job_id: str | None = None
    job_state: str | None = None
    attempts: int = 0
    log: str | None = None
    eta_s: float | None = None         # seconds to the last epoch at the run's own speed (``eta_seconds``)
    eta_rough: bool = False            # from the first epoch's steps only (no epoch timed yet)
    reason: str | None = None          # squeue's pending reason code of a queued run's job (reasons.py words it)
    start: str | None = None           # Slurm's expected start of that job (squeue --start), ISO; None if none
    cause: str | None = None           # status.json's ``cause``: the trainer's own word on why it failed


def _local_alive(status: Mapping[str, Any]) -> bool:
    """A run started without Slurm (--debug, cluster local) whose process is still alive here."""
    if status.get("host") != socket.gethostname() or not status.get("pid"):
        return False
    try:
        os.kill(int(status["pid"]), 0)
    except (OSError, ValueError, TypeError, OverflowError):
        return False
    return True


def run_status(spec: RunSpec, job: JobRef | None, job_state: str | None,
               pending: tuple[str, str] | None = None) -> RunStatus:
    """Combine the run folder's status.json with the live state of its newest job (``pending``: its squeue
    reason and expected start while it waits)."""
    rd = RunDir(spec.run_dir)
    status = rd.read_status()
    vals = [r for r in read_jsonl(rd.metrics_file) if r.get("split") == "val"]
    job_id = job.job_id if job else status.get("job_id")
    base: dict[str, Any] = dict(
                epoch=count_field(status, "epoch"), epochs=count_field(status, "epochs") or spec.config.epoch,
                step=count_field(status, "step"), steps=count_field(status, "steps"),
                metrics=vals[-1] if vals else {}, job_id=str(job_id) if job_id else None,
                job_state=job_state, attempts=count_field(status, "attempts") or 0,
                log=(job.log if job and job.log else str(rd.log_file) if rd.log_file.exists() else None),
                cause=str(status["cause"]) if status.get("cause") else None)
    run_state = status.get("state")
    if run_state == State.RUNNING:
        base["eta_s"], base["eta_rough"] = eta_seconds(status, read_jsonl(rd.timings_file), base["epochs"])
    reason = str(status.get("reason") or "")
    if job_state in LIVE:
        state = State.RUNNING if job_state in ("RUNNING", "COMPLETING", "CONFIGURING") else State.QUEUED
        what = f"job {job_state.lower()}"
        if state == State.QUEUED and pending is not None:
            base["reason"], base["start"] = code_of(pending[0]), pending[1] if start_text(pending[1]) else None
            what += f": {explain(pending[0]).words}"
        return RunStatus(spec, state, what + (f"; last: {reason}" if reason else ""), **base)
    if run_state == State.COMPLETED:
        return RunStatus(spec, State.COMPLETED, "", **base)
    if run_state == State.FAILED:
        return RunStatus(spec, State.FAILED, reason, **base)
    if run_state == State.INTERRUPTED:
        return RunStatus(spec, State.INTERRUPTED, reason + (f" (job {job_state})" if job_state else ""), **base)
    if run_state == State.RUNNING:
        if job is None and _local_alive(status):
            return RunStatus(spec, State.RUNNING, f"local pid {status['pid']}", **base)
        if job_state == UNKNOWN:
            return RunStatus(spec, State.UNKNOWN, "status.json says running; Slurm cannot be asked", **base)
        how = f"job {job_state}" if job_state and job_state != GONE else "no live job"
        return RunStatus(spec, State.DIED, f"{how} while status.json says running: resumes from its checkpoint",
                         **base)
    if job is not None:
        if job_state == NEVER:
            return RunStatus(spec, State.DIED, f"job {job.job_id} can never start (the job it follows failed or "
                                               f"was cancelled): the next mtl-launch replaces it", **base)
        if job_state == UNKNOWN:
            return RunStatus(spec, State.UNKNOWN, f"job {job.job_id}: Slurm cannot be asked", **base)
        return RunStatus(spec, State.DIED, f"job {job.job_id} {job_state or 'ended'} before training started",
                         **base)
    return RunStatus(spec, State.NEW, "", **base)


ETA_EPOCHS = 3   # the speed of the last few epochs: recent, as a resumed run may be on another node


def _timestamp(text: object) -> float | None:
    """status.json's ``now_iso`` times as epoch seconds (None for a missing or hand-edited value)."""
    try:
        return datetime.strptime(str(text), "%Y-%m-%dT%H:%M:%S%z").timestamp()
    except ValueError:
        return None


def eta_seconds(status: Mapping[str, object], timings: Sequence[Mapping[str, object]], epochs: int | None,
                now: float | None = None) -> tuple[float | None, bool]:
    """Seconds until a running run's last epoch ends, at its own speed, and whether the figure is rough.

    The speed is the mean wall time (train + evaluation) of its last ``ETA_EPOCHS`` epochs in timings.jsonl;
    the part of the current epoch done is status.json's step/steps. Before any epoch has ended, the measured
    time per step of the epoch under way (status.json ``step_seconds``, written from the epoch's first step on;
    evaluation not counted): rough; without it, the first attempt's steps so far over the time since it
    started (start-up included): rough. The
    time since status.json's last progress report is taken off, so the figure counts down between reports.
    (None, False) when there is nothing to go by.
    """
    now = time.time() if now is None else now
    epoch, step, steps = (count_field(status, k) for k in ("epoch", "step", "steps"))
    if not epochs:
        return None, False
    done = (epoch or 0) + (step / steps if step and steps else 0.0)
    secs = [float(sec) for r in timings
            if isinstance(sec := r.get("seconds"), (int, float)) and not isinstance(sec, bool) and sec > 0]
    updated = _timestamp(status.get("updated_at"))
    since = max(0.0, now - updated) if updated is not None else 0.0
    if secs:
        recent = secs[-ETA_EPOCHS:]
        return max(0.0, (epochs - done) * sum(recent) / len(recent) - since), False
    per_step = status.get("step_seconds")
    if isinstance(per_step, (int, float)) and not isinstance(per_step, bool) and per_step > 0 and steps:
        return max(0.0, (epochs - done) * steps * per_step - since), True
    started = _timestamp(status.get("attempt_started_at"))
    if count_field(status, "attempts") == 1 and not epoch and step and steps and started is not None \
            and updated is not None and updated > started:
        return max(0.0, (epochs * steps - step) * (updated - started) / step - since), True
    return None, False


def keep_known(fresh: Mapping[str, str], last: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """Slurm's answer, with each UNKNOWN (squeue failed or timed out) replaced by the job's last known state.

    A watch asks every few seconds; one scheduler hiccup must not turn every running job into an unknown one.
    Also returns the ids whose state was kept. A job never seen stays UNKNOWN.
    """
    out, kept = dict(fresh), []
    for job, state in fresh.items():
        if state == UNKNOWN and job in last and last[job] != UNKNOWN:
            out[job] = last[job]
            kept.append(job)
    return out, kept


def idle(statuses: Sequence[RunStatus]) -> bool:
    """No run is queued, running or unknown: nothing changes now without a new launch. The runs are then
    completed or failed (``FINAL_STATES``: done), or new, interrupted or died (they wait for mtl-launch)."""
    return not any(st.state in LIVE_STATES or st.state == State.UNKNOWN for st in statuses)


def grid_status(specs: Sequence[RunSpec], jobs: Mapping[str, JobRef],
                states: Mapping[str, str], waiting: Mapping[str, tuple[str, str]] | None = None) -> list[RunStatus]:
    """``run_status`` for every spec; ``jobs`` from ledger.latest_jobs, ``states`` from slurm_states,
    ``waiting`` (optional) from slurmq.waiting: why each pending job waits."""
    out = []
    for spec in specs:
        job = jobs.get(str(spec.run_dir))
        out.append(run_status(spec, job, states.get(job.job_id) if job else None,
                              (waiting or {}).get(job.job_id) if job else None))
    return out


@dataclass(frozen=True)
class Waiting:
    """The queued runs that wait for one reason: what mtl-status says below its table."""

    reason: Reason
    runs: list[RunStatus]
    start: str | None          # the earliest expected start Slurm gave one of them (ISO), None if none


def waiting_groups(statuses: Sequence[RunStatus]) -> list[Waiting]:
    """Queued runs grouped by their job's pending reason, the most common reason first."""
    groups: dict[str, list[RunStatus]] = {}
    for st in statuses:
        if st.state == State.QUEUED and st.reason:
            groups.setdefault(st.reason, []).append(st)
    out = []
    for code, runs in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        starts = sorted(st.start for st in runs if st.start)
        out.append(Waiting(explain(code), runs, starts[0] if starts else None))
    return out


def action(st: RunStatus, retry_failed: bool = False, force: bool = False) -> Action:
    """What a launch does with a run: submit, resume, retry, or ``skip: why``."""
    if st.state in LIVE_STATES:
        return Action(Kind.SKIP, st.state)   # even with --force: two jobs on one folder would collide
    if st.state == State.UNKNOWN:
        return Action(Kind.SKIP, "job state unknown")
    if st.state == State.COMPLETED:
        return Action(Kind.RERUN) if force else Action(Kind.SKIP, "completed")
    if st.state == State.FAILED:
        return Action(Kind.RETRY) if retry_failed or force else Action(Kind.SKIP, "failed (--retry-failed)")
    if st.state in (State.INTERRUPTED, State.DIED):
        return Action(Kind.RESUME)
    return Action(Kind.SUBMIT)


def submits(act: Action) -> bool:
    return act.submits


def last_metrics_text(metrics: Mapping[str, object]) -> str:
    keys = [k for k in (*(m.key for m in METRICS), "loss")
            if isinstance(metrics.get(k), (int, float)) and not isinstance(metrics.get(k), bool)]
    return " ".join(f"{k}={metrics[k]:.3g}" for k in keys)


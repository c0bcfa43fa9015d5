"""The state of every run of a grid, from its run folder plus the job the ledger gave it.

The run folder (status.json, written by the trainer) says how far the run got; Slurm says whether a
job is still on it. Together they tell a run that is queued or running from one whose job died
without a word (scancel, node failure, OOM: status.json still says ``running``), which the next
``mtl-launch`` resumes from its checkpoint. Reads, never writes, never prints.
"""
from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from .grid import RunSpec
from .ledger import JobRef
from .rundir import RunDir, count_field, read_jsonl
from .slurmq import GONE, LIVE, UNKNOWN
from .states import LIVE_STATES, Action, Kind, State
from .tasks import METRICS


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


def _local_alive(status: Mapping[str, Any]) -> bool:
    """A run started without Slurm (--debug, cluster local) whose process is still alive here."""
    if status.get("host") != socket.gethostname() or not status.get("pid"):
        return False
    try:
        os.kill(int(status["pid"]), 0)
    except (OSError, ValueError, TypeError, OverflowError):
        return False
    return True


def run_status(spec: RunSpec, job: JobRef | None, job_state: str | None) -> RunStatus:
    """Combine the run folder's status.json with the live state of its newest job."""
    rd = RunDir(spec.run_dir)
    status = rd.read_status()
    vals = [r for r in read_jsonl(rd.metrics_file) if r.get("split") == "val"]
    job_id = job.job_id if job else status.get("job_id")
    base: dict[str, Any] = dict(
                epoch=count_field(status, "epoch"), epochs=count_field(status, "epochs") or spec.config.epoch,
                step=count_field(status, "step"), steps=count_field(status, "steps"),
                metrics=vals[-1] if vals else {}, job_id=str(job_id) if job_id else None,
                job_state=job_state, attempts=count_field(status, "attempts") or 0,
                log=(job.log if job and job.log else str(rd.log_file) if rd.log_file.exists() else None))
    run_state = status.get("state")
    reason = str(status.get("reason") or "")
    if job_state in LIVE:
        state = State.RUNNING if job_state in ("RUNNING", "COMPLETING", "CONFIGURING") else State.QUEUED
        return RunStatus(spec, state, f"job {job_state.lower()}" + (f"; last: {reason}" if reason else ""), **base)
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
        if job_state == UNKNOWN:
            return RunStatus(spec, State.UNKNOWN, f"job {job.job_id}: Slurm cannot be asked", **base)
        return RunStatus(spec, State.DIED, f"job {job.job_id} {job_state or 'ended'} before training started",
                         **base)
    return RunStatus(spec, State.NEW, "", **base)


def grid_status(specs: Sequence[RunSpec], jobs: Mapping[str, JobRef],
                states: Mapping[str, str]) -> list[RunStatus]:
    """``run_status`` for every spec; ``jobs`` from ledger.latest_jobs, ``states`` from slurm_states."""
    out = []
    for spec in specs:
        job = jobs.get(str(spec.run_dir))
        out.append(run_status(spec, job, states.get(job.job_id) if job else None))
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


def last_metrics_text(metrics: Mapping[str, Any]) -> str:
    keys = [k for k in (*(m.key for m in METRICS), "loss")
            if isinstance(metrics.get(k), (int, float)) and not isinstance(metrics.get(k), bool)]
    return " ".join(f"{k}={metrics[k]:.3g}" for k in keys)


"""Run states and launch actions: named, in one place (status.json, mtl-status, the launch plan, collect).

``State`` is a StrEnum, so status.json, jobs/ records and old run folders keep plain strings and compare
equal to them. The run folder itself only ever says ``FOLDER_STATES``; the others are what mtl-status
concludes from the folder together with Slurm.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class State(StrEnum):
    NEW = "new"                  # no run folder state yet, no job
    QUEUED = "queued"            # a live job that has not started
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"            # the trainer said why (reason); --retry-failed to run it again
    INTERRUPTED = "interrupted"  # signal, scancel, Ctrl-C: checkpointed, the next launch resumes it
    DIED = "died"                # status.json says running but no process or job is alive
    UNKNOWN = "unknown"          # Slurm cannot be asked


FOLDER_STATES = (State.RUNNING, State.INTERRUPTED, State.COMPLETED, State.FAILED)
"""What a trainer writes into status.json."""

LIVE_STATES = (State.QUEUED, State.RUNNING)

FINAL_STATES = (State.COMPLETED, State.FAILED)
"""Outcomes: only a new launch changes them (--retry-failed, --force). ``mtl-status --watch`` ends once no run
is queued, running or unknown (and no mtl-launch is under way); its last line says whether every run then
has one of these outcomes, or some still wait for a launch (new, interrupted, died)."""


class Cause(StrEnum):
    """Why a run failed: status.json's ``cause`` (the trainer's own verdict) or what sacct says killed its job.
    The groups of ``mtl-status --failures``, each with the retry it calls for."""

    OOM = "oom"                  # the job went over its memory (sacct OUT_OF_MEMORY)
    TIMEOUT = "timeout"          # the time limit came before any checkpoint to requeue from (sacct TIMEOUT)
    NODE_FAIL = "node_fail"      # the node died under the job (sacct NODE_FAIL)
    NAN = "nan"                  # the loss became NaN or inf
    DATA = "data"                # the data could not be found or read
    CONFIG = "config"            # the run's config.yaml was refused
    DISK_FULL = "disk_full"
    STALLED = "stalled"          # the checkpoint did not advance over STALL_ATTEMPTS consecutive attempts
    CANCELLED = "cancelled"      # scancel by a user or an admin
    EXCEPTION = "exception"      # anything else: grouped by the last line of its traceback


CAUSE_TITLES: dict[Cause, str] = {
    Cause.OOM: "out of memory", Cause.TIMEOUT: "time limit without a checkpoint", Cause.NODE_FAIL: "node failure",
    Cause.NAN: "NaN/inf loss", Cause.DATA: "data error", Cause.CONFIG: "config error", Cause.DISK_FULL: "disk full",
    Cause.STALLED: "stalled: no progress across requeues", Cause.CANCELLED: "cancelled",
    Cause.EXCEPTION: "Python exception",
}

STALL_ATTEMPTS = 2
"""Consecutive attempts whose checkpoint did not advance before a run is stopped as stalled, not requeued."""


class Kind(StrEnum):
    SUBMIT = "submit"
    RESUME = "resume"
    RETRY = "retry"
    RERUN = "rerun"
    SKIP = "skip"


@dataclass(frozen=True)
class Action:
    """What a launch does with a run, and why when it does nothing (``skip: why``)."""

    kind: Kind
    why: str = ""

    @property
    def submits(self) -> bool:
        return self.kind != Kind.SKIP

    def __str__(self) -> str:
        return f"{self.kind}: {self.why}" if self.why else str(self.kind)

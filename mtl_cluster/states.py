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

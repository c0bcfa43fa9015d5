"""Why a job waits: squeue's pending reason codes in plain words, with what to do. The one vocabulary of them.

squeue's ``%r`` is a code (``Priority``, ``QOSMaxGRESPerUser``...); mtl-status shows ``words`` in the run's
state and one line per reason below its table: the words, what to do, the runs it holds and, where Slurm has
one, its expected start (``squeue --start``). A code not listed here is shown as Slurm spells it.
Reads nothing, prints nothing.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Mapping


@dataclass(frozen=True)
class Reason:
    code: str          # as squeue spells it (the part before any ", UnavailableNodes:..." detail)
    words: str         # short: the run's state cell
    todo: str = ""     # what to do about it ("" when nothing helps but waiting)
    never: bool = False  # the job cannot start as it is


_R = Reason
REASONS: Mapping[str, Reason] = {r.code: r for r in (
    _R("None", "just queued; the scheduler has not looked at it yet", "wait a scheduler cycle"),
    _R("Priority", "waiting its turn: jobs of higher priority go first",
       "nothing to do; sprio -j <job> shows its priority"),
    _R("Resources", "waiting for free GPUs/CPUs/memory on the nodes it may use",
       "nothing to do; it starts when running jobs end"),
    _R("Dependency", "waiting for the job it follows to end", "nothing to do; it starts after its parent run"),
    _R("DependencyNeverSatisfied", "can never start: the job it follows failed or was cancelled",
       "the next mtl-launch cancels it and submits it again", never=True),
    _R("JobHeldUser", "held by a user (scontrol hold)", "release it: scontrol release <job>"),
    _R("JobHeldAdmin", "held by an administrator", "ask the cluster's administrators why"),
    _R("BeginTime", "waiting for its --begin time", "nothing to do; it starts at that time"),
    _R("JobArrayTaskLimit", "waiting for a slot in its array's throttle (%N)",
       "raise it: mtl-launch ... --throttle N"),
    _R("PartitionTimeLimit", "can never start: its time limit is above the partition's MaxTime",
       "cancel it (mtl-launch --cancel), lower timeout_min and launch again", never=True),
    _R("PartitionNodeLimit", "can never start: it asks more nodes than the partition allows",
       "cancel it and ask for fewer nodes", never=True),
    _R("PartitionDown", "its partition is down", "wait for the administrators to bring it up"),
    _R("PartitionInactive", "its partition is inactive", "wait for the administrators, or use another partition"),
    _R("ReqNodeNotAvail", "a node it needs is down, drained or reserved", "wait, or use another partition"),
    _R("Reservation", "waiting for its reservation to start", "nothing to do"),
    _R("QOSMaxGRESPerUser", "your QOS's cap on GPUs per user is reached by your running jobs",
       "nothing to do; it starts as your running jobs end"),
    _R("QOSMaxTRESPerUser", "your QOS's cap on resources per user is reached by your running jobs",
       "nothing to do; it starts as your running jobs end"),
    _R("QOSMaxJobsPerUserLimit", "your QOS's cap on running jobs per user is reached",
       "nothing to do; it starts as your running jobs end"),
    _R("QOSMaxSubmitJobPerUserLimit", "your QOS's cap on queued jobs per user is reached",
       "nothing to do; fewer runs per launch (--only) keeps under it"),
    _R("QOSMaxWallDurationPerJobLimit", "can never start: its time limit is above the QOS's MaxWall",
       "cancel it, lower timeout_min and launch again", never=True),
    _R("QOSGrpGRES", "the GPUs of your QOS's group are all in use", "nothing to do; it starts as they free up"),
    _R("AssocGrpGRES", "the GPUs of your account (association) are all in use",
       "nothing to do; it starts as your group's jobs end"),
    _R("AssocGrpGRESMinutes", "your account's GPU-minutes budget is spent", "ask your group or the administrators"),
    _R("AssocMaxJobsLimit", "your account's cap on running jobs is reached",
       "nothing to do; it starts as your running jobs end"),
    _R("AssocGrpCPULimit", "the CPUs of your account are all in use", "nothing to do; it starts as they free up"),
    _R("InvalidAccount", "can never start: its account is not valid", "fix the profile's account", never=True),
    _R("InvalidQOS", "can never start: its QOS is not valid", "fix the profile's qos", never=True),
)}


def code_of(reason: str) -> str:
    """``ReqNodeNotAvail, UnavailableNodes:n1`` -> ``ReqNodeNotAvail``; ``(None)`` -> ``None``."""
    return reason.split(",")[0].strip().strip("()") or "None"


def explain(reason: str) -> Reason:
    """The plain words for one of squeue's reasons; a code not listed stays as Slurm spells it."""
    code = code_of(reason)
    return REASONS.get(code) or Reason(code, f"Slurm says {code}")


def start_text(start: str | None, now: datetime | None = None) -> str | None:
    """squeue's expected start (``%S``, ISO) as ``10:42`` today or ``12-07 10:42``; None when it has none."""
    if not start or start in ("N/A", "Unknown", "None"):
        return None
    try:
        when = datetime.strptime(start, "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        return None
    now = now or datetime.now()
    return when.strftime("%H:%M" if when.date() == now.date() else "%m-%d %H:%M")

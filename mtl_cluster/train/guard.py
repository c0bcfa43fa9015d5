"""The requeue guard: a run whose checkpoint does not advance over consecutive attempts stops as stalled.

A stop signal makes the trainer checkpoint after its next step, so an attempt that Slurm signals always gets
further. One that is killed without a signal does not: preempted with a grace time shorter than a step and a
checkpoint, killed for memory, a node that died; Slurm requeues it (preemption, node failure), and it would
start from the same checkpoint again and again. Each attempt's ``start`` line in attempts.jsonl names the
newest checkpoint it found (``checkpoint``). When the last ``STALL_ATTEMPTS`` attempts all started from the
checkpoint that is still the newest, none of them advanced: the attempt starting now records the run failed
with cause ``stalled`` (status.json) and exits 1, not 75, so nothing requeues it. A retry (``mtl-launch
--retry-failed``: an attempt that starts from a failed run) begins a new count.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

from ..states import STALL_ATTEMPTS, State
from .checkpoint import checkpoint_name, list_checkpoints

NO_CHECKPOINT = checkpoint_name(0, 0)
"""What an attempt that found no checkpoint starts from: the first step, the name a checkpoint saved there has."""


def newest_checkpoint(folder: Path) -> str:
    """The newest checkpoint's file name, or NO_CHECKPOINT: what an attempt starting now would resume from."""
    found = list_checkpoints(folder)
    return found[-1].name if found else NO_CHECKPOINT


def stalled(attempts: Sequence[Mapping[str, object]], now: str, retry: bool = False) -> str | None:
    """Why the run must not be requeued again, or None: the last STALL_ATTEMPTS attempts (since the last retry)
    all started from ``now``, the newest checkpoint still. ``retry``: the attempt asking starts from a failed
    run, so it begins a new count. Attempts written before the guard (no ``checkpoint`` field) never count."""
    if retry:
        return None
    starts = [a for a in attempts if a.get("event") == "start"]
    streak: list[Mapping[str, object]] = []
    for start in reversed(starts):
        streak.append(start)
        previous = start.get("previous")
        if len(streak) == STALL_ATTEMPTS or (isinstance(previous, dict) and previous.get("state") == State.FAILED):
            break
    if len(streak) < STALL_ATTEMPTS or any(s.get("checkpoint") != now for s in streak):
        return None
    since = "the first step (no checkpoint)" if now == NO_CHECKPOINT else f"checkpoint {now}"
    return (f"stalled: attempts {streak[-1].get('attempt', '?')} to {streak[0].get('attempt', '?')} all started from "
            f"{since} and none got further (killed without a checkpoint: preemption with a short grace time, "
            f"memory, a failing node), so it is not requeued again; see the job logs and sacct, then "
            f"mtl-launch --retry-failed")

"""The learning rate of every optimizer step, for the schedules that depend on the step count only.

A multitask and a single-task row of one section must follow the same schedule, or their Δ partly measures
the schedule: ``cosine`` is a function of the global step and the run's budget alone, so it is identical in
every row that trains the same steps, whatever tasks are active. It is stateless (nothing to checkpoint), so a
resumed run sets exactly the rates an uninterrupted one did. ``plateau`` (the seed's, on each row's own
validation loss) and ``step`` stay torch schedulers stepped once an epoch (``loop.Trainer``).
"""
from __future__ import annotations

import math

# The seed's ReduceLROnPlateau threshold (relative): torch's default is 1e-4, the seed's code set 1e-5.
PLATEAU_THRESHOLD = 1e-5
PER_STEP = frozenset({"cosine"})


def lr_factor(scheduler: str, step: int, total_steps: int) -> float:
    """The factor on ``lr_rate`` at 0-based global ``step`` of ``total_steps``: ``cosine`` decays from 1 at the
    first step towards 0 after the last one (half a cosine over the whole budget, no restarts)."""
    if scheduler != "cosine":
        raise ValueError(f"{scheduler!r} is not a per-step schedule")
    if total_steps <= 0:
        return 1.0
    return 0.5 * (1.0 + math.cos(math.pi * min(step, total_steps) / total_steps))

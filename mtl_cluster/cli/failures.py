"""``mtl-status --failures``: the runs that need a human, grouped by cause (launch/triage.py), each group with its
count, runs, one log, what to do and the exact mtl-launch command that retries it."""
from __future__ import annotations

import argparse
import shlex
from typing import TYPE_CHECKING, Sequence

from rich.console import Console

from .common import grid_words

if TYPE_CHECKING:
    from ..launch.clusters import ClusterProfile
    from ..launch.status import RunStatus

SHOWN_RUNS = 6   # runs named per group; the rest are counted


def print_failures(statuses: Sequence[RunStatus], prof: ClusterProfile | None, args: argparse.Namespace,
                   out: Console, launched_on: Sequence[str] = ()) -> int:
    """Print the triage; exit 0 (looking is not failing: the runs' own states say what failed).
    ``launched_on``: the clusters the jobs/ records name for these runs; mtl-status needs no --cluster, the
    retry does, so where the records name one cluster the retry command names it."""
    from ..launch.triage import check_words, counts, retry_words, triage
    from ..states import CAUSE_TITLES

    groups = triage(statuses, prof)
    if not groups:
        out.print(f"no failed, stalled or killed runs among the {len(statuses)} runs", markup=False, soft_wrap=True)
        return 0
    n = sum(len(g.runs) for g in groups)
    out.print(f"{n} of {len(statuses)} runs need attention, in {len(groups)} group(s): "
              + ", ".join(f"{k} {CAUSE_TITLES[c]}" for c, k in counts(groups).items()), markup=False, soft_wrap=True)
    launch = grid_words("mtl-launch", args, only=False)   # each group names its own experiments
    if not args.cluster and not args.debug and len(set(launched_on)) == 1:
        launch[2:2] = ["--cluster", launched_on[0]]
    for g in groups:
        labels = [r.spec.label for r in g.runs]
        named = ", ".join(labels[:SHOWN_RUNS]) + (f" and {len(labels) - SHOWN_RUNS} more" if len(labels) > SHOWN_RUNS
                                                   else "")
        out.print("", markup=False, soft_wrap=True)
        out.print(f"{g.title}: {len(g.runs)} run(s): {named}", markup=False, soft_wrap=True)
        reason = next((r.detail for r in g.runs if r.detail), "")
        if reason:
            out.print(f"  reason: {reason}", markup=False, soft_wrap=True)
        if g.evidence:
            out.print(f"  slurm:  {g.evidence.line}", markup=False, soft_wrap=True)
        if g.log:
            out.print(f"  log:    {g.log}", markup=False, soft_wrap=True)
        if g.hint:
            out.print(f"  note:   {g.hint}", markup=False, soft_wrap=True)
        check = check_words(g, launch)
        if check:
            out.print(f"  check:  {shlex.join(check)}", markup=False, soft_wrap=True)
        out.print(f"  retry:  {shlex.join(retry_words(g, launch))}", markup=False, soft_wrap=True)
    return 0

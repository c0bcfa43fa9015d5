"""The chaos soak (tests/chaos.py) at CI size on the REAL local Slurm: the 12-run grid under random faults
(seed fixed) until it is complete, then nothing lost, nothing doubled. The tally is printed at the end of the
test session; scripts/chaos.sh runs longer soaks (RELIABILITY.md keeps their table)."""
from __future__ import annotations

from pathlib import Path

import pytest
from chaos import Soak
from conftest import CHAOS
from slurmkit import require_cluster

pytestmark = pytest.mark.slurm

SEED = 1           # fixed: the same faults in the same order each time (their timing still varies)
MINUTES = 2.5      # faults are injected this long; the grid then finishes undisturbed


def test_chaos_soak(tmp_path: Path) -> None:
    require_cluster()
    tally = Soak(tmp_path, SEED, MINUTES).run()
    CHAOS.extend(tally.lines())
    print("\n".join(tally.events))
    assert sum(tally.faults.values()) >= 8, tally.lines()           # the soak really injected faults
    assert len(tally.faults) >= 5, tally.lines()                     # of several kinds
    assert tally.runs == 12 and tally.runs_doubled == 0 and tally.runs_lost == 0, tally.lines()
    assert tally.problems == [], "\n".join(tally.lines())

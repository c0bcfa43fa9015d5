"""The requeue guard (mtl_cluster/train/guard.py): a run whose checkpoint does not advance over two consecutive
attempts is not started a third time; it is recorded failed with cause ``stalled`` and exits 1, not 75. Tested
on the rule itself and on a real trainer killed with SIGKILL (what preemption past its grace time does)."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from conftest import REPO, TINY, attempt_starts, killed_after_start, run_cli, sets, train_cmd, wait_for

from mtl_cluster.errors import EXIT_FAILED
from mtl_cluster.rundir import RunDir, read_jsonl
from mtl_cluster.states import STALL_ATTEMPTS, Cause, State
from mtl_cluster.train.guard import NO_CHECKPOINT, stalled


def _start(attempt: int, checkpoint: str | None, previous_state: str = "interrupted") -> dict:
    record = {"event": "start", "attempt": attempt, "previous": {"state": previous_state}}
    return record if checkpoint is None else {**record, "checkpoint": checkpoint}


C1, C2 = "ckpt-e0000-s000010.pt", "ckpt-e0000-s000020.pt"


@pytest.mark.parametrize("attempts, now, is_stalled", [
    ([], NO_CHECKPOINT, False),                                                  # a fresh run
    ([_start(1, NO_CHECKPOINT)], NO_CHECKPOINT, False),                          # one attempt lost: requeue
    ([_start(1, NO_CHECKPOINT), _start(2, NO_CHECKPOINT)], NO_CHECKPOINT, True),  # two: stop
    ([_start(1, NO_CHECKPOINT), _start(2, C1)], C1, False),                      # the first advanced
    ([_start(1, C1), _start(2, C1)], C2, False),                                 # the second advanced
    ([_start(1, C1), _start(2, C1), _start(3, C1)], C1, True),
    ([_start(1, C1), _start(2, C1, previous_state="failed")], C1, False),        # a retry starts a new count
    ([_start(1, C1, "failed"), _start(2, C1), _start(3, C1)], C1, True),
    ([_start(1, None), _start(2, None)], NO_CHECKPOINT, False),                  # written before the guard
])
def test_the_rule(attempts: list[dict], now: str, is_stalled: bool) -> None:
    assert STALL_ATTEMPTS == 2
    why = stalled(attempts + [{"event": "resume", "attempt": 9, "step": 3}], now)
    assert (why is not None) == is_stalled, why
    assert stalled(attempts, now, retry=True) is None       # the attempt asking is a retry: a new count
    if why:
        assert why.startswith("stalled: attempts ") and "mtl-launch --retry-failed" in why


def test_two_attempts_killed_without_a_checkpoint_stop_the_third_and_a_retry_trains(tmp_path: Path) -> None:
    run = tmp_path / "run"
    # a long first epoch and no periodic checkpoint: nothing is saved before the kill
    args = sets(*TINY, "steps_per_epoch=400", "checkpoint_every_min=60")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for _ in range(STALL_ATTEMPTS):
        killed_after_start(run, args, env)

    third = run_cli(train_cmd(run, *args))
    assert third.returncode == EXIT_FAILED, third.stderr
    lines = third.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mtl-train: error: stalled: attempts 1 to 2 all started from "
                                                   "the first step (no checkpoint)"), third.stderr
    status = RunDir(run).read_status()
    assert status["state"] == State.FAILED and status["cause"] == Cause.STALLED and status["attempts"] == 3, status
    assert not RunDir(run).metrics_file.exists()
    assert [a["checkpoint"] for a in attempt_starts(run)] == [NO_CHECKPOINT] * 3
    assert not [a for a in read_jsonl(RunDir(run).attempts_file) if a["event"] == "resume" and a["attempt"] == 3]

    # a retry (the attempt after a failure) begins a new count: it builds, resumes and trains
    proc = subprocess.Popen(train_cmd(run, *args), cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: any(a["event"] == "resume" and a["attempt"] == 4
                              for a in read_jsonl(RunDir(run).attempts_file)), 120, "the retry's resume line")
        assert RunDir(run).read_status()["state"] == State.RUNNING
        assert RunDir(run).read_status()["cause"] is None
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert json.loads(json.dumps(attempt_starts(run)[-1]["previous"]))["state"] == State.FAILED

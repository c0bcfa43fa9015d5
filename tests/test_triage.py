"""Failures triaged by cause (mtl_cluster/launch/triage.py) on run folders that real trainers left: a NaN loss,
missing data, a stalled run (SIGKILLed twice), a job killed for memory or at its time limit (the folder a kill
leaves, with the end state sacct gives such a job); each group with its retry command and resource change."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import TINY, killed_after_start, run_cli, sets, train_cmd

from mtl_cluster.config import load_train_config, signature
from mtl_cluster.launch.clusters import profile_from_dict
from mtl_cluster.launch.grid import RunSpec
from mtl_cluster.launch.ledger import JobRef
from mtl_cluster.launch.status import run_status
from mtl_cluster.launch.triage import retry_words, triage, verdict
from mtl_cluster.rundir import RunDir
from mtl_cluster.states import STALL_ATTEMPTS, Cause, State

LAUNCH = ["mtl-launch", "experiments.yaml", "--cluster", "narvi"]


def _spec(run: Path, name: str, args: list[str], resources: dict | None = None) -> RunSpec:
    cfg = load_train_config(None, [a for a in args if a != "--set"])
    return RunSpec(name, signature(cfg), cfg, run, resources=resources or {})


def _job(state: str | None):
    return (JobRef("4242_0", "narvi", "logs/4242_0_0_log.err", "jobs/x.json"), state) if state else (None, None)


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, tuple[Path, list[str]]]:
    """One real run folder per way of failing (trained once for the module)."""
    root = tmp_path_factory.mktemp("failures")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = {}
    for name, extra in (("nan-a", ["lr_rate=1e12"]), ("nan-b", ["lr_rate=1e12", "seed=1"]),
                        ("data", ["dataset=CVPR_16_ChaLearn", f"data.root={root / 'nowhere'}"])):
        args = sets(*TINY, "epoch=1", *extra)
        res = run_cli(train_cmd(root / name, *args))
        assert res.returncode != 0, res.stderr
        out[name] = (root / name, args)
    for name, kills in (("stalled", STALL_ATTEMPTS), ("killed", 1)):
        args = sets(*TINY, "steps_per_epoch=400", "checkpoint_every_min=60", f"seed={kills}")
        for _ in range(kills):
            killed_after_start(root / name, args, env)
        if name == "stalled":
            assert run_cli(train_cmd(root / name, *args)).returncode == 1
        out[name] = (root / name, args)
    return out


def test_each_way_of_failing_gets_its_cause(folders) -> None:
    def st(name: str, job_state: str | None = None, resources: dict | None = None):
        run, args = folders[name]
        return run_status(_spec(run, name, args, resources), *_job(job_state))

    assert verdict(st("nan-a")).cause == Cause.NAN
    assert verdict(st("data")).cause == Cause.DATA
    assert verdict(st("stalled")).cause == Cause.STALLED
    killed = st("killed")
    assert killed.state == State.DIED and verdict(killed).cause == Cause.EXCEPTION   # no word from anyone
    assert verdict(st("killed", "OUT_OF_MEMORY")).cause == Cause.OOM
    assert verdict(st("killed", "TIMEOUT")).cause == Cause.TIMEOUT
    assert verdict(st("killed", "NODE_FAIL")).cause == Cause.NODE_FAIL
    assert verdict(st("killed", "CANCELLED")).cause == Cause.CANCELLED
    # the trainer's own verdict comes first: a NaN run whose job sacct calls FAILED is a NaN run
    assert verdict(st("nan-b", "FAILED")).cause == Cause.NAN


def test_groups_their_logs_and_the_commands_that_retry_them(folders) -> None:
    prof = profile_from_dict("narvi", {"partition": "gpu", "mem_gb": 12, "timeout_min": 90}, "clusters.narvi")
    statuses = [run_status(_spec(folders[n][0], n.split("-")[0] if n.startswith("nan") else n, folders[n][1]),
                           *_job(None)) for n in ("nan-a", "nan-b", "data", "stalled")]
    killed_run, killed_args = folders["killed"]
    statuses.append(run_status(_spec(killed_run, "AlexNet-Age", killed_args, {"mem_gb": 20}),
                               *_job("OUT_OF_MEMORY")))
    groups = triage(statuses, prof)
    assert [(g.cause, len(g.runs)) for g in groups] == [(Cause.NAN, 2), (Cause.DATA, 1), (Cause.OOM, 1),
                                                        (Cause.STALLED, 1)]
    nan, data, oom, stalled = groups
    assert nan.experiments == ["nan"] and "lower lr_rate" in nan.hint
    assert nan.log == str(RunDir(folders["nan-a"][0]).log_file)
    assert retry_words(nan, LAUNCH) == [*LAUNCH, "--only", "nan", "--retry-failed"]
    assert retry_words(stalled, LAUNCH) == [*LAUNCH, "--only", "stalled", "--retry-failed"]
    # killed for memory: twice what its experiment's resources gave it, not the profile's 12; a died run needs
    # no --retry-failed (a launch resumes it)
    assert oom.resources == {"mem_gb": 40} and "had 20 GB" in oom.hint
    assert retry_words(oom, LAUNCH) == [*LAUNCH, "--only", "AlexNet-Age", "--resources", "mem_gb=40"]
    assert oom.log == "logs/4242_0_0_log.err"
    assert "mtl-data check" in data.hint

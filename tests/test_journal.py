"""The submission journal (mtl_cluster/launch/journal.py) on the REAL local Slurm: a launch cut short by a failing
sbatch or a SIGKILL leaves no job unrecorded, and the next launch submits every run exactly once.

A PATH shim named ``sbatch`` (the chaos soak's, tests/chaos.py) counts its calls and fails (or SIGKILLs
mtl-launch after the real sbatch) on the one the test picks. The jobs carry ``--begin=now+1hour`` so they
stay queued while the test looks.
"""
from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Iterator

import pytest
from chaos import SHIM  # sbatch, counted: FAIL_ON, LIE_ON, KILL_AFTER
from slurmkit import REPO, dirs, require_cluster, specs, wait

from mtl_cluster.cli.launch import launch_main
from mtl_cluster.cli.status import status_main
from mtl_cluster.launch.journal import COMMENT_PREFIX
from mtl_cluster.launch.journal import folder as journal_folder
from mtl_cluster.launch.ledger import latest_jobs

pytestmark = pytest.mark.slurm

STUDY = "journaltest"     # job names are mtl:journaltest...
YAML = """\
defaults:
  dataset: synthetic
  image_size: 64
  batch_size: 8
  device: cpu
  epoch: 1
  steps_per_epoch: 2
  data: {synthetic_train_size: 16, synthetic_eval_size: 8}
experiments:
  - name: AlexNet-Smile
    loss_weights: [0, 1, 0, 0]
grid:
  seed: [0, 1, 2, 3, 4]
clusters:
  test:
    executor: slurm
    partition: gpu
    cpus_per_task: 1
    mem_gb: 1
    timeout_min: 5
    max_array_size: 2                  # 5 runs: arrays of 2, 2 and a single job
    additional: {begin: "now+1hour"}   # stay queued while the test looks
"""
BROKEN_SQUEUE = "#!/bin/bash\necho 'squeue: error: slurm_load_jobs error: Socket timed out' >&2\nexit 1\n"


@pytest.fixture(scope="module", autouse=True)
def cluster() -> None:
    require_cluster()


def _queue() -> list[tuple[str, str]]:
    """(job id with task, comment) of this test's jobs in squeue, one per array task."""
    res = subprocess.run(["squeue", "-h", "-r", "-o", "%i|%k|%j|%r"], capture_output=True, text=True, timeout=15)
    assert res.returncode == 0, res.stderr
    return [(line.split("|")[0], line.split("|")[1]) for line in res.stdout.splitlines()
            if line.split("|")[2].startswith(f"mtl:{STUDY}")]


def _reasons() -> set[str]:
    res = subprocess.run(["squeue", "-h", "-r", "-o", "%j|%r"], capture_output=True, text=True, timeout=15)
    return {line.split("|")[1] for line in res.stdout.splitlines() if line.startswith(f"mtl:{STUDY}")}


@pytest.fixture
def study(tmp_path: Path) -> Iterator[Path]:
    """The study file; every job of it is cancelled at the end, whatever happened."""
    p = tmp_path / f"{STUDY}.yaml"
    p.write_text(YAML)
    try:
        yield p
    finally:
        ids = sorted({j.split("_")[0] for j, _ in _queue()})
        if ids:
            subprocess.run(["scancel", *ids], timeout=30)
        wait(lambda: not _queue(), 60, "the test's jobs to leave squeue")


def _shim(tmp: Path, name: str = "sbatch", text: str = SHIM) -> dict[str, str]:
    shim_dir = tmp / f"shim-{name}"
    shim_dir.mkdir(exist_ok=True)
    (shim_dir / name).write_text(text)
    (shim_dir / name).chmod(0o755)
    return {"PATH": f"{shim_dir}:{os.environ['PATH']}", "SHIM_DIR": str(shim_dir)}


def _each_run_once(yaml_file: Path, tmp: Path) -> None:
    """squeue holds one task per run, and it is the job jobs/ records for that run."""
    runs = specs(yaml_file, tmp)
    queue = _queue()
    assert all(c.startswith(COMMENT_PREFIX) for _, c in queue), queue
    assert len(queue) == len(runs) == 5 and len({j for j, _ in queue}) == 5, queue
    jobs = latest_jobs(tmp / "jobs")
    recorded = Counter(jobs[str(s.run_dir)].job_id for s in runs)
    assert set(recorded) == {j for j, _ in queue} and set(recorded.values()) == {1}, (recorded, queue)


def test_sbatch_failing_on_the_third_array(study: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    """Arrays 1-2 queued, sbatch fails on 3: a clear error, the queued runs recorded; the next launch
    submits only the never-queued run."""
    args = [str(study), "--cluster", "test", *dirs(tmp_path)]
    with monkeypatch.context() as m:
        for k, v in {**_shim(tmp_path), "FAIL_ON": "3"}.items():
            m.setenv(k, v)
        assert launch_main(args) == 1
    err = capsys.readouterr().err
    assert "sbatch failed for array 3/3" in err and "Socket timed out" in err, err
    assert "4 run(s) queued before it are recorded; run mtl-launch again" in err, err
    assert "Traceback" not in err
    assert len(_queue()) == 4
    assert not list(journal_folder(tmp_path / "jobs").glob("*.jsonl"))     # settled at once

    assert launch_main(args) == 0                                             # the real sbatch
    out = capsys.readouterr()
    assert "1 of 5 runs to submit" in out.out and "submitted array 1/1: job" in out.err, out
    _each_run_once(study, tmp_path)
    assert "JobHeldUser" not in _reasons()                                    # none left held

    assert launch_main(args) == 0                                             # idempotent
    assert "nothing to submit" in capsys.readouterr().out


def _launch_proc(yaml_file: Path, tmp: Path, env: dict[str, str], *extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-c", "from mtl_cluster.cli.launch import entry_launch; entry_launch()",
           str(yaml_file), "--cluster", "test", *extra, *dirs(tmp)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO), **env})


def test_launch_sigkilled_right_after_sbatch(study: Path, tmp_path: Path, capsys) -> None:
    """mtl-launch SIGKILLed as sbatch returns array 2 (its job id and submitit's pickles never written):
    a launch while squeue fails leaves both arrays alone; the next adopts them, restores the pickles and
    releases the hold; --cancel then cancels all, the adopted orphans too."""
    killed = _launch_proc(study, tmp_path, {**_shim(tmp_path), "KILL_AFTER": "2"})
    assert killed.returncode == -9, killed.stderr
    assert len(_queue()) == 4 and "JobHeldUser" in _reasons()     # array 2 is still held
    (journal,) = journal_folder(tmp_path / "jobs").glob("*.jsonl")
    assert not list((tmp_path / "jobs").glob("*.json"))                     # no launch record was written
    assert launch_main([str(study), "--cluster", "test", "--dry-run", "--no-preflight", *dirs(tmp_path)]) == 0
    assert "holds the journal of an interrupted launch" in capsys.readouterr().err

    # squeue hiccups: whatever the journal cannot settle is left alone, said in one line, not resubmitted
    blind = _launch_proc(study, tmp_path, _shim(tmp_path, "squeue", BROKEN_SQUEUE), "--no-preflight")
    assert blind.returncode == 0, blind.stderr
    assert "4 run(s) of an interrupted launch are not submitted again" in blind.stderr, blind.stderr
    assert "1 of 5 runs to submit" in blind.stdout, blind.stdout             # the run never queued
    assert journal.exists() and len(_queue()) == 5

    args = [str(study), "--cluster", "test", *dirs(tmp_path)]
    assert launch_main(args) == 0
    out = capsys.readouterr()
    assert "journal: adopted 4 run(s) queued by an interrupted launch" in out.err, out.err
    assert "nothing to submit" in out.out, out.out
    assert not journal.exists()
    _each_run_once(study, tmp_path)
    assert "JobHeldUser" not in _reasons()                                    # released
    for s in specs(study, tmp_path):                                          # every job has its pickle
        job = latest_jobs(tmp_path / "jobs")[str(s.run_dir)].job_id
        assert (tmp_path / "logs" / "test" / job / f"{job}_submitted.pkl").is_file(), job

    assert status_main([str(study), *dirs(tmp_path)[:4]]) == 0
    assert "5 queued" in capsys.readouterr().out

    assert launch_main([*args, "--cancel"]) == 0
    assert "cancelled 5 job(s)" in capsys.readouterr().out
    wait(lambda: not _queue(), 30, "squeue to be empty after --cancel")


def test_cancel_settles_an_interrupted_launch_first(study: Path, tmp_path: Path, capsys) -> None:
    """--cancel right after a SIGKILLed launch: the orphans are adopted (still held) and cancelled."""
    killed = _launch_proc(study, tmp_path, {**_shim(tmp_path), "KILL_AFTER": "1"})
    assert killed.returncode == -9, killed.stderr
    assert len(_queue()) == 2
    assert launch_main([str(study), "--cluster", "test", "--cancel", *dirs(tmp_path)]) == 0
    out = capsys.readouterr()
    assert "adopted 2 run(s)" in out.err and "cancelled 2 job(s)" in out.out, out
    wait(lambda: not _queue(), 30, "squeue to be empty after --cancel")


def test_a_launch_that_adopts_orphans_and_then_fails_itself_records_both(study: Path, tmp_path: Path,
                                                                         capsys) -> None:
    """Found by the chaos soak: mtl-launch SIGKILLed after its second sbatch, then a launch whose own sbatch
    queues the last run but answers with a time-out. That launch adopts the orphans at its start and its own
    job after the failure: two launch records in one second of one process, and both must stay (the second
    once replaced the first, leaving 4 runs untracked and submitted again)."""
    killed = _launch_proc(study, tmp_path, {**_shim(tmp_path), "KILL_AFTER": "2"})
    assert killed.returncode == -9, killed.stderr
    (tmp_path / "shim-sbatch" / "count").write_text("0")
    lied = _launch_proc(study, tmp_path, {**_shim(tmp_path), "LIE_ON": "1"})
    assert lied.returncode == 1 and "sbatch failed for array 1/1" in lied.stderr, lied.stderr
    assert "journal: adopted 4 run(s) queued by an interrupted launch" in lied.stderr, lied.stderr
    assert len(list((tmp_path / "jobs").glob("*.json"))) == 2, list((tmp_path / "jobs").iterdir())
    _each_run_once(study, tmp_path)
    args = [str(study), "--cluster", "test", *dirs(tmp_path)]
    assert launch_main(args) == 0 and "nothing to submit" in capsys.readouterr().out


# A smaller check with no Slurm: a torn last line (a kill mid-write) does not stop the journal being read.
def test_a_torn_journal_line_is_skipped(tmp_path: Path) -> None:
    from mtl_cluster.launch.journal import Journal, _read
    j = Journal(tmp_path / "jobs", "test", str(tmp_path / "logs"))
    j.intent(1, 2, [{"run_dir": "a"}], 5, 1)
    j.submitted(1, "42")
    with open(j.path, "a") as f:
        f.write('{"event": "intent", "array": 2, "ru')
    head, intents = _read(j.path)
    assert head["token"] == j.token and [(i.array, i.job_id) for i in intents] == [(1, "42")]

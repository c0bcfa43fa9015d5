"""A queue the user can read (issue 23), on the REAL local Slurm (scripts/slurm_local.sh start): why a job waits
in plain words with Slurm's expected start, the cluster's own limits checked before anything is queued, a
throttle for a running study. Every test leaves the cluster as it found it (jobs cancelled, limits restored).
"""
from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Iterator

import pytest
from slurmkit import dirs, require_cluster, specs, wait

from mtl_cluster.cli.launch import launch_main
from mtl_cluster.cli.status import status_main
from mtl_cluster.launch.ledger import latest_jobs

pytestmark = pytest.mark.slurm

STUDY = """\
defaults:
  dataset: synthetic
  image_size: 64
  batch_size: 8
  device: cpu
  epoch: 1
  steps_per_epoch: 4
  data: {{synthetic_train_size: 16, synthetic_eval_size: 8}}
experiments:
  - name: AlexNet-Gender_Age
    id: pre
    loss_weights: [1, 0, 0, 1]
  - name: AlexNet-Smile
    id: ft
    loss_weights: [0, 1, 0, 0]
    init_from: pre
    load_IMDB_WIKI_pretrained_model: true
  - name: AlexNet-Gender
    id: other
    loss_weights: [1, 0, 0, 0]
clusters:
  test:
    executor: slurm
    partition: {partition}
    gres: "gpu:1"
    cpus_per_task: 1
    mem_gb: 1
    timeout_min: {timeout}
"""


@pytest.fixture(scope="module", autouse=True)
def cluster() -> None:
    require_cluster()


def _run(*cmd: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout)


def _study(tmp: Path, name: str, partition: str = "gpu", timeout: int = 5) -> Path:
    path = tmp / f"{name}.yaml"
    path.write_text(STUDY.format(partition=partition, timeout=timeout))
    return path


def _squeue(name: str) -> dict[str, tuple[str, str]]:
    """job id -> (state, reason) of this study's jobs (job names mtl:<name>...)."""
    res = _run("squeue", "-h", "-r", "-o", "%i|%T|%r|%j")
    return {p[0]: (p[1], p[2]) for p in (line.split("|") for line in res.stdout.splitlines())
            if len(p) == 4 and p[3].startswith(f"mtl:{name}")}


@pytest.fixture
def cleanup() -> Iterator[list[str]]:
    """Job ids (or study names, as ``name:<study>``) to cancel at the end, whatever happens."""
    todo: list[str] = []
    yield todo
    for item in todo:
        ids = list(_squeue(item[5:])) if item.startswith("name:") else [item]
        if ids:
            _run("scancel", *{i.split("_")[0] for i in ids})


def _blocker(cleanup: list[str], gpus: int = 2) -> str:
    """A job that holds the node's GPUs (10 minutes at most) and runs now."""
    res = _run("sbatch", "--parsable", "-p", "gpu", f"--gres=gpu:{gpus}", "-c", "1", "--mem=100M", "--time=10",
               "-J", "mtl-test-blocker", "-o", "/dev/null", "--wrap", "sleep 600")
    assert res.returncode == 0, res.stderr
    job = res.stdout.strip().split(";")[0]
    cleanup.append(job)
    wait(lambda: _run("squeue", "-h", "-j", job, "-o", "%T").stdout.strip() == "RUNNING", 60,
         "the blocker job to run")
    return job


def test_status_says_why_each_job_waits_and_when_it_should_start(tmp_path, capsys, cleanup):
    """Three runs queued behind a job that holds both GPUs: the pretraining run waits for resources (and Slurm
    has an expected start for it), its fine-tune for its dependency, the third is held by the user. mtl-status
    says each in plain words with what to do, and the start time squeue --start gives."""
    _blocker(cleanup)
    yaml_file = _study(tmp_path, "waitstudy")
    cleanup.append("name:waitstudy")
    args = [str(yaml_file), "--cluster", "test", *dirs(tmp_path)]
    assert launch_main(args) == 0
    pre, ft, other = specs(yaml_file, tmp_path)
    jobs = latest_jobs(tmp_path / "jobs")
    j_pre, j_ft, j_other = (jobs[str(s.run_dir)].job_id for s in (pre, ft, other))
    assert _run("scontrol", "uhold", j_other).returncode == 0     # uhold: a user's hold, even as root
    want = {j_pre: "Resources", j_ft: "Dependency", j_other: "JobHeldUser"}
    wait(lambda: {j: r for j, (_s, r) in _squeue("waitstudy").items()} == want, 60,
         f"the study's jobs to wait for {want}")
    wait(lambda: _run("squeue", "-h", "-j", j_pre, "-o", "%S").stdout.strip() not in ("", "N/A"), 60,
         "Slurm to give the starved job an expected start (backfill)")
    capsys.readouterr()
    assert status_main([str(yaml_file), *dirs(tmp_path)[:4]]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()

    def line(code: str) -> str:
        found = [x for x in lines if f"[{code}]" in x]
        assert len(found) == 1, (code, out)
        return found[0]

    assert line("Resources").startswith(
        f"1 queued run(s) waiting for free GPUs/CPUs/memory on the nodes it may use [Resources]: {pre.label} "
        f"(job {j_pre}); nothing to do; it starts when running jobs end; Slurm expects the first to start at "), out
    assert line("Dependency") == (f"1 queued run(s) waiting for the job it follows to end [Dependency]: "
                                  f"{ft.label} (job {j_ft}); nothing to do; it starts after its parent run"), out
    assert line("JobHeldUser") == (f"1 queued run(s) held by a user (scontrol hold) [JobHeldUser]: {other.label} "
                                   f"(job {j_other}); release it: scontrol release {j_other}"), out
    assert "3 queued" in out

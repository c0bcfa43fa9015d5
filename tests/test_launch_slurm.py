"""mtl-launch against the REAL local Slurm (scripts/slurm_local.sh start): arrays, dependencies,
idempotent relaunch, requeue at the time limit, scontrol requeue mid-run, scancel + relaunch.

Without a reachable controller these tests skip loudly; with MTL_REQUIRE_SLURM=1 (CI) they fail.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import pytest

from mtl_cluster.cli_launch import launch_main, status_main
from mtl_cluster.experiments import load_experiments
from mtl_cluster.grid import expand
from mtl_cluster.ledger import latest_jobs
from mtl_cluster.rundir import RunDir, read_jsonl

pytestmark = pytest.mark.slurm
REPO = Path(__file__).resolve().parents[1]


def _skip_or_fail(reason: str) -> None:
    msg = f"SLURM LAUNCH TESTS NOT RUN: {reason}; start it with 'scripts/slurm_local.sh start'"
    if os.environ.get("MTL_REQUIRE_SLURM", "") not in ("", "0"):
        pytest.fail(msg, pytrace=False)
    warnings.warn(msg, pytest.PytestWarning, stacklevel=2)
    pytest.skip(msg)


@pytest.fixture(scope="module", autouse=True)
def cluster() -> None:
    if shutil.which("sinfo") is None or shutil.which("sbatch") is None:
        _skip_or_fail("sinfo/sbatch are not installed")
    try:
        res = subprocess.run(["sinfo", "-h", "-o", "%R"], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        _skip_or_fail("sinfo timed out")
    if res.returncode != 0 or "gpu" not in res.stdout.split():
        _skip_or_fail(f"sinfo cannot reach slurmctld or there is no gpu partition ({res.stderr.strip()[-200:]})")


# A tiny study: its own cluster profiles so the time limits are short.
STUDY = """\
defaults:
  dataset: synthetic
  image_size: 64
  batch_size: 8
  device: cpu
  data: {{synthetic_train_size: 64, synthetic_eval_size: 24}}
experiments:
  - name: AlexNet-Smile
    loss_weights: [0, 1, 0, 0]
  - name: AlexNet-Gender
    loss_weights: [1, 0, 0, 0]
clusters:
  here: {{executor: local}}
  short:
    executor: slurm
    partition: gpu
    gres: "gpu:1"
    cpus_per_task: 1
    mem_gb: 2
    timeout_min: {timeout_min}
    signal_delay_s: 20
    max_requeues: 8
    array_parallelism: 2
    setup: ["export OMP_NUM_THREADS=1"]
"""


def _study(tmp: Path, timeout_min: int) -> Path:
    p = tmp / "experiments.yaml"
    p.write_text(textwrap.dedent(STUDY.format(timeout_min=timeout_min)))
    return p


def _dirs(tmp: Path) -> list[str]:
    return ["--results", str(tmp / "results"), "--jobs-dir", str(tmp / "jobs"), "--logs-dir", str(tmp / "logs")]


def _specs(yaml_file: Path, tmp: Path, *args: str, debug: bool = False, only=None, sets=()):
    return expand(load_experiments(yaml_file), tmp / "results", debug=debug, only=only, overrides=list(sets))


def _wait(pred, timeout: float, what: str, poll: float = 1.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(poll)
    q = subprocess.run(["squeue", "-o", "%i %T %r %M"], capture_output=True, text=True, timeout=10).stdout
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}; squeue:\n{q}")


def _state(run_dir: Path) -> str | None:
    return RunDir(run_dir).read_status().get("state")


def _all_completed(specs) -> bool:
    return all(_state(s.run_dir) == "completed" for s in specs)


def _sacct(job: str, fields: str = "JobID,State,Start,End") -> dict[str, list[str]]:
    res = subprocess.run(["sacct", "-X", "-n", "-P", "-j", job, "-o", fields], capture_output=True, text=True,
                         timeout=15)
    return {line.split("|")[0]: line.split("|")[1:] for line in res.stdout.splitlines() if "|" in line}


def _epochs(run_dir: Path) -> list[tuple[int, str]]:
    return [(r["epoch"], r["split"]) for r in read_jsonl(RunDir(run_dir).metrics_file)]


def test_debug_grid_as_arrays_then_nothing_then_status(tmp_path, capsys):
    """The repo's debug grid on the test cluster: arrays, fine-tunes after their pretraining, idempotent."""
    yaml_file = REPO / "experiments.yaml"
    args = [str(yaml_file), "--debug", "--cluster", "test", *_dirs(tmp_path)]
    assert launch_main(args) == 0
    out = capsys.readouterr()
    assert "submitted array 1/" in out.err and "afterok:" in out.err, out.err
    specs = _specs(yaml_file, tmp_path, debug=True)
    assert len(specs) == 15
    _wait(lambda: _all_completed(specs), 300, "the debug grid to complete")

    jobs = latest_jobs(tmp_path / "jobs")
    assert len({j.job_id.split("_")[0] for j in jobs.values()}) < len(specs)       # arrays, not 15 sbatch
    # every fine-tune started after its pretraining run ended
    for s in specs:
        if s.init_run_dir is None:
            continue
        child, parent = jobs[str(s.run_dir)].job_id, jobs[str(s.init_run_dir)].job_id
        c_start = _sacct(child)[child][1]
        p_end = _sacct(parent)[parent][2]
        assert c_start >= p_end, (s.label, c_start, p_end)
        assert "initialised trunk" in (s.run_dir / "log.txt").read_text()

    assert launch_main(args) == 0                                                   # second launch
    out = capsys.readouterr()
    assert "nothing to submit" in out.out and "submitted" not in out.err
    assert len(list((tmp_path / "jobs").glob("*.json"))) == 1

    assert status_main([str(yaml_file), "--debug", *_dirs(tmp_path)[:4]]) == 0
    table = capsys.readouterr().out
    assert "15 completed" in table and "COMPLETED" in table


def test_time_limit_requeues_and_matches_uninterrupted_run(tmp_path, capsys):
    """A 1-minute limit: USR2 -> the trainer checkpoints -> requeued (same job id) -> same metrics."""
    yaml_file = _study(tmp_path, timeout_min=1)
    # ~60 s of single-thread compute: longer than the first USR2 can take to come (Slurm checks limits
    # every 30 s), so the run cannot finish before its time limit however idle the machine is.
    sets = ["--set", "epoch=2", "--set", "steps_per_epoch=1200"]
    only = ["--only", "AlexNet-Smile"]
    assert launch_main([str(yaml_file), "--cluster", "short", *only, *sets, *_dirs(tmp_path)]) == 0
    capsys.readouterr()
    # the same run, uninterrupted, here (another results root), while Slurm works
    ref_root = tmp_path / "ref"
    ref = subprocess.Popen([sys.executable, "-c", "from mtl_cluster.cli_launch import entry_launch; entry_launch()",
                            str(yaml_file), "--cluster", "here", *only, *sets, "--results", str(ref_root / "results"),
                            "--jobs-dir", str(ref_root / "jobs")], stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    (spec,) = _specs(yaml_file, tmp_path, only=["AlexNet-Smile"], sets=sets[1::2])
    _wait(lambda: _state(spec.run_dir) == "completed", 600, "the time-limited run to complete", poll=2)
    assert ref.wait(timeout=400) == 0, ref.stderr.read()

    status = RunDir(spec.run_dir).read_status()
    job = latest_jobs(tmp_path / "jobs")[str(spec.run_dir)].job_id
    assert status["attempts"] >= 2, status
    assert status["job_id"] == job                               # requeued: Slurm kept the id
    assert "SIGUSR2 received" in (spec.run_dir / "log.txt").read_text()
    _wait(lambda: _sacct(job).get(job, [""])[0] == "COMPLETED", 60, "sacct COMPLETED")
    (ref_dir,) = [p.parent for p in (ref_root / "results").rglob("summary.json")]
    assert ref_dir.name == spec.run_dir.name                     # same signature, same folder name
    assert (spec.run_dir / "metrics.jsonl").read_bytes() == (ref_dir / "metrics.jsonl").read_bytes()


def test_scontrol_requeue_and_scancel_relaunch_resume(tmp_path, capsys):
    """Mid-run: one task is requeued by hand and finishes by itself; the other is cancelled, shows as
    such in mtl-status, and the next mtl-launch resumes it from its checkpoint."""
    yaml_file = _study(tmp_path, timeout_min=10)
    sets = ["--set", "epoch=3", "--set", "steps_per_epoch=250"]
    launch = [str(yaml_file), "--cluster", "short", *sets, *_dirs(tmp_path)]
    assert launch_main(launch) == 0
    capsys.readouterr()
    smile, gender = _specs(yaml_file, tmp_path, sets=sets[1::2])
    jobs = latest_jobs(tmp_path / "jobs")
    j_smile, j_gender = jobs[str(smile.run_dir)].job_id, jobs[str(gender.run_dir)].job_id
    assert j_smile.split("_")[0] == j_gender.split("_")[0]        # one array

    def mid_run(s) -> bool:
        return _state(s.run_dir) == "running" and len(_epochs(s.run_dir)) >= 2   # epoch 1 of 3 done
    _wait(lambda: mid_run(smile) and mid_run(gender), 180, "both runs past epoch 1", poll=0.3)

    subprocess.run(["scontrol", "requeue", j_smile], check=True, timeout=30)
    assert launch_main([str(yaml_file), "--cluster", "short", "--cancel", "--only", "AlexNet-Gender", *sets,
                        *_dirs(tmp_path)]) == 0
    assert f"cancelled 1 job(s): {j_gender}" in capsys.readouterr().out
    _wait(lambda: (_sacct(j_gender).get(j_gender) or [""])[0].startswith("CANCELLED"), 60, "the cancel")
    time.sleep(6)                                                  # KillWait: the trainer saves or is killed
    assert status_main([str(yaml_file), *sets, *_dirs(tmp_path)[:4]]) == 0
    table = capsys.readouterr().out
    assert "CANCELLED" in table and ("interrupted" in table or "died" in table), table

    assert launch_main(launch) == 0                                # resubmits the cancelled run only
    out = capsys.readouterr()
    assert "submitted 1 runs" in out.out, out.out
    _wait(lambda: _all_completed([smile, gender]), 240, "both runs to complete", poll=2)
    for s, job in ((smile, j_smile), (gender, None)):
        st = RunDir(s.run_dir).read_status()
        assert st["attempts"] >= 2, st
        assert _epochs(s.run_dir) == [(e, sp) for e in (1, 2, 3) for sp in ("train", "val")]
        assert "resumed from" in (s.run_dir / "log.txt").read_text()
        if job:
            assert st["job_id"] == job                             # scontrol requeue kept the id
    assert launch_main(launch) == 0
    assert "nothing to submit" in capsys.readouterr().out

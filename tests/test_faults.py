"""The fault matrix on the REAL local Slurm: each test injects one fault into a running run and checks the
outcome. Where the run can finish it must end with metrics.jsonl and summary.json byte-identical to an
uninterrupted run of the same config (so no epoch is missing or written twice). Every test adds its row
to the matrix printed at the end of the session (tests/faultmatrix.py; RELIABILITY.md keeps it).
"""
from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Iterator

import pytest

import faultmatrix as fm
from mtl_cluster.cli.collect import collect_main
from mtl_cluster.cli.launch import launch_main
from mtl_cluster.cli.status import status_main
from mtl_cluster.launch.ledger import latest_jobs
from mtl_cluster.rundir import RunDir
from mtl_cluster.train.checkpoint import list_checkpoints
from mtl_cluster.train.guard import NO_CHECKPOINT
from slurmkit import REPO, dirs, epochs, require_cluster, sacct, specs, state, wait

pytestmark = pytest.mark.slurm

MULTI = "AlexNet-Gender_Smile_Emotion_Age"
SHORT = 150        # steps per epoch: 3 epochs x 150 steps of 4 x 8 images, ~40 s on one core
LONG = 470         # ~2 min on one core: more than three attempts cut at 0-30 s can cover
STUDY = """\
defaults:
  dataset: synthetic
  image_size: 64
  batch_size: 8
  device: cpu
  epoch: 3
  steps_per_epoch: {steps}
  checkpoint_every_min: 0.05           # every 3 s: a kill loses little
  data: {{synthetic_train_size: 64, synthetic_eval_size: 24}}
experiments:
  - name: AlexNet-Gender_Smile_Emotion_Age
    loss_weights: [1, 1, 1, 1]
  - name: AlexNet-Smile
    loss_weights: [0, 1, 0, 0]
clusters:
  here: {{executor: local}}
  faults:
    executor: slurm
    partition: gpu
    gres: "gpu:1"
    cpus_per_task: 1
    mem_gb: 2
    timeout_min: {timeout_min}
    signal_delay_s: {signal_delay_s}
    max_requeues: {max_requeues}
    array_parallelism: 2
    setup: ["export OMP_NUM_THREADS=1"]
  roomy:                               # the same with a longer limit (not part of the run's identity)
    executor: slurm
    partition: gpu
    gres: "gpu:1"
    cpus_per_task: 1
    mem_gb: 2
    timeout_min: 30
    setup: ["export OMP_NUM_THREADS=1"]
"""


def study(tmp: Path, steps: int, timeout_min: int = 10, max_requeues: int = 20, signal_delay_s: int = 50) -> Path:
    """slurmctld checks time limits every 30 s and signals a job once ``signal_delay_s`` + 30 s reach its end,
    so with a 1-minute limit: USR2 0-30 s into an attempt with the default 50, 10-40 s with 20."""
    p = tmp / "experiments.yaml"
    p.write_text(textwrap.dedent(STUDY.format(steps=steps, timeout_min=timeout_min, max_requeues=max_requeues,
                                              signal_delay_s=signal_delay_s)))
    return p


class References:
    """Uninterrupted runs of the fault configs, trained here in the background while Slurm works."""

    def __init__(self, root: Path):
        self.root = root
        self.procs: dict[int, subprocess.Popen] = {}
        cmds = []
        for steps in (LONG, SHORT):
            folder = root / str(steps)
            folder.mkdir(parents=True)
            cmds.append(shlex.join([sys.executable, "-c", "from mtl_cluster.cli.launch import entry_launch; "
                                    "entry_launch()", str(study(folder, steps)), "--cluster", "here", "--only",
                                    MULTI, "--results", str(folder / "results"), "--jobs-dir", str(folder / "jobs")]))
        # one after the other on one core; the fault runs use the other
        self.proc = subprocess.Popen(["bash", "-c", " && ".join(cmds)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True, cwd=REPO,
                                     env={**os.environ, "OMP_NUM_THREADS": "1"})

    def run_dir(self, steps: int) -> Path:
        """The reference run folder of ``steps`` (waits for it to complete)."""
        folder = self.root / str(steps) / "results"
        wait(lambda: any(p.parent for p in folder.rglob("summary.json")) or self.proc.poll() not in (None, 0),
             900, f"the reference run of {steps} steps/epoch", poll=2)
        found = [p.parent for p in folder.rglob("summary.json")]
        assert found, f"reference run failed: {self.proc.stderr.read() if self.proc.stderr else ''}"
        return found[0]


@pytest.fixture(scope="module")
def refs(tmp_path_factory) -> Iterator[References]:
    require_cluster()
    r = References(tmp_path_factory.mktemp("reference"))
    yield r
    if r.proc.poll() is None:
        r.proc.kill()


@pytest.fixture
def row(request) -> Iterator[fm.Row]:
    n, fault, injected = request.node.get_closest_marker("fault").args
    r = fm.record(fm.Row(n, fault, injected))
    yield r


def launch(yaml_file: Path, tmp: Path, *extra: str, cluster: str = "faults") -> int:
    return launch_main([str(yaml_file), "--cluster", cluster, "--only", MULTI, *extra, *dirs(tmp)])


def the_run(yaml_file: Path, tmp: Path) -> Path:
    (spec,) = specs(yaml_file, tmp, only=[MULTI])
    return spec.run_dir


def job_of(tmp: Path, run_dir: Path) -> str:
    return latest_jobs(tmp / "jobs")[str(run_dir)].job_id


def start(tmp: Path, steps: int, **study_kw: int) -> tuple[Path, Path, str]:
    """Write the study, launch the multitask run on the fault profile: (yaml, run folder, job id)."""
    yaml_file = study(tmp, steps, **study_kw)
    run = the_run(yaml_file, tmp)
    assert launch(yaml_file, tmp) == 0
    return yaml_file, run, job_of(tmp, run)


def progressed(run_dir: Path, steps: int, at_least: int) -> bool:
    return state(run_dir) == "running" and fm.position(run_dir, steps) >= at_least


def gone(job: str) -> bool:
    """The job is no longer queued or running (its state as sacct has it)."""
    q = subprocess.run(["squeue", "-h", "-j", job.split("_")[0], "-o", "%T"], capture_output=True, text=True,
                       timeout=10)
    return q.returncode == 0 and not q.stdout.strip()


def finish_and_compare(run_dir: Path, ref: Path, row: fm.Row, timeout: float = 300) -> None:
    wait(lambda: state(run_dir) == "completed", timeout, "the run to complete", poll=2)
    assert epochs(run_dir) == [(e, s) for e in (1, 2, 3) for s in ("train", "val", "test")]
    assert not list(run_dir.rglob("*.tmp")), list(run_dir.rglob("*.tmp"))      # no half-written file left
    same = fm.identical(run_dir, ref)
    row.identical = "yes" if same else "NO"
    assert same, "metrics.jsonl/summary.json differ from the uninterrupted run"


# -- the rows -----------------------------------------------------------------------------------------
@pytest.mark.fault(1, "time limit hit mid-epoch, three times in a row", "a 1-minute time limit (USR2 50 s before)")
def test_time_limit_three_times(tmp_path, refs, row):
    yaml_file, run, job = start(tmp_path, LONG, timeout_min=1)
    wait(lambda: (run / "log.txt").exists() and (run / "log.txt").read_text().count("SIGUSR2 received") >= 3
         or state(run) == "completed", 600, "three time limits", poll=0.5)
    # three in a row is the fault; then give the job room to finish (root may change a job's limit)
    subprocess.run(["scontrol", "update", f"JobId={job}", "TimeLimit=30"], check=True, timeout=30)
    wait(lambda: state(run) == "completed", 600, "the time-limited run to complete", poll=2)
    log = (run / "log.txt").read_text()
    limits = log.count("SIGUSR2 received")
    st = RunDir(run).read_status()
    assert limits >= 3, f"only {limits} time limits hit; the run was too short for this machine"
    assert st["job_id"] == job and st["attempts"] == limits + 1      # requeued: Slurm kept the id
    wait(lambda: sacct(job).get(job, [""])[0] == "COMPLETED", 60, "sacct COMPLETED")
    row.epochs_lost = fm.lost_after_signals(run, LONG)
    row.outcome = f"USR2 {limits} times -> checkpoint at a step boundary -> requeued (same job id) -> completed"
    finish_and_compare(run, refs.run_dir(LONG), row)


def _urgent_job(tmp: Path) -> str:
    """A job in the 'urgent' partition that needs both GPUs: Slurm preempts (requeues) what holds one."""
    res = subprocess.run(["sbatch", "--parsable", "-p", "urgent", "--gres=gpu:2", "-c", "1", "--mem=100M",
                          "-o", str(tmp / "urgent_%j.out"), "--wrap", "sleep 2"],
                         capture_output=True, text=True, timeout=30, check=True)
    return res.stdout.strip().split(";")[0]


@pytest.mark.fault(2, "preemption, then `scontrol requeue`, each during a step",
                   "a job in a higher-priority partition; scontrol requeue")
def test_preemption_and_requeue(tmp_path, refs, row):
    yaml_file, run, job = start(tmp_path, SHORT)
    wait(lambda: progressed(run, SHORT, 40), 180, "the run to train 40 steps", poll=0.3)
    urgent = _urgent_job(tmp_path)
    wait(lambda: "SIGTERM received" in (run / "log.txt").read_text(), 60, "the preemption to reach the trainer")
    wait(lambda: sacct(urgent).get(urgent, [""])[0] == "COMPLETED", 120, "the urgent job")
    wait(lambda: progressed(run, SHORT, SHORT + 40) and RunDir(run).read_status()["attempts"] == 2, 180,
         "the preempted run to resume into epoch 2", poll=0.3)
    subprocess.run(["scontrol", "requeue", job], check=True, timeout=30)
    finish_and_compare(run, refs.run_dir(SHORT), row)
    st = RunDir(run).read_status()
    assert st["attempts"] == 3 and st["job_id"] == job, st
    row.epochs_lost = fm.lost_after_signals(run, SHORT)
    row.outcome = "SIGTERM -> checkpoint at the next step boundary -> Slurm requeued it twice (same job id) -> completed"


@pytest.mark.fault(3, "SIGKILL of the training process (no chance to save)", "kill -9 of the trainer's pid")
def test_sigkill_then_status_says_died_and_launch_resumes(tmp_path, refs, row, capsys):
    yaml_file, run, job = start(tmp_path, SHORT)
    wait(lambda: progressed(run, SHORT, SHORT // 2) and list_checkpoints(run / "checkpoints"), 180,
         "the run half-way into epoch 1 with a checkpoint", poll=0.3)
    reached = fm.position(run, SHORT)
    os.kill(int(RunDir(run).read_status()["pid"]), signal.SIGKILL)
    wait(lambda: gone(job), 120, "the job to end")
    capsys.readouterr()
    assert status_main([str(yaml_file), "--only", MULTI, *dirs(tmp_path)[:4]]) == 0
    table = capsys.readouterr().out
    assert "died" in table, table
    assert launch(yaml_file, tmp_path) == 0
    assert "submitted 1 runs" in capsys.readouterr().out
    finish_and_compare(run, refs.run_dir(SHORT), row)
    row.epochs_lost = fm.epochs_lost(reached, fm.resumed_from(run, SHORT)[0], SHORT)
    row.outcome = "mtl-status: died; the next mtl-launch resubmitted it; resumed from the last checkpoint -> completed"


def _slurmd_pid() -> int:
    state_dir = Path(os.environ.get("MTL_SLURM_STATE", "/var/tmp/mtl-slurm"))
    return int((state_dir / "run" / "slurmd.pid").read_text().split()[0])


@pytest.mark.fault(4, "slurmd stopped and restarted while the job runs", "SIGTERM to slurmd, 20 s, slurm_local.sh start")
def test_slurmd_restart(tmp_path, refs, row):
    yaml_file, run, job = start(tmp_path, SHORT)
    wait(lambda: progressed(run, SHORT, 40), 180, "the run to train 40 steps", poll=0.3)
    pid = _slurmd_pid()
    os.kill(pid, signal.SIGTERM)
    wait(lambda: not Path(f"/proc/{pid}").exists(), 30, "slurmd to stop", poll=0.3)
    reached = fm.position(run, SHORT)
    time.sleep(20)
    assert fm.position(run, SHORT) > reached, "training stopped while slurmd was down"
    back = subprocess.run(["bash", str(REPO / "scripts" / "slurm_local.sh"), "start"], capture_output=True,
                          text=True, timeout=180)
    assert back.returncode == 0, back.stdout + back.stderr
    finish_and_compare(run, refs.run_dir(SHORT), row)
    st = RunDir(run).read_status()
    assert st["job_id"] == job
    row.epochs_lost = fm.lost_after_signals(run, SHORT) if st["attempts"] > 1 else "0.00"
    row.outcome = (f"the job kept training while slurmd was down; completed in attempt {st['attempts']}")


@pytest.mark.fault(5, "`scancel`, then `mtl-launch` again", "mtl-launch --cancel (scancel)")
def test_scancel_then_relaunch(tmp_path, refs, row, capsys):
    yaml_file, run, job = start(tmp_path, SHORT)
    wait(lambda: progressed(run, SHORT, SHORT + 20), 180, "the run into epoch 2", poll=0.3)
    assert launch(yaml_file, tmp_path, "--cancel") == 0
    assert f"cancelled 1 job(s): {job}" in capsys.readouterr().out
    wait(lambda: gone(job) and state(run) != "running", 60, "the cancel to stop the trainer")
    assert status_main([str(yaml_file), "--only", MULTI, *dirs(tmp_path)[:4]]) == 0
    table = capsys.readouterr().out
    assert "interrupted" in table and "CANCELLED" in table, table
    # mtl-status --failures: the cancelled group and the command that resumes it (the cluster from the jobs/
    # record, as mtl-status was given none; no --retry-failed: an interrupted run is resumed by any launch)
    assert status_main([str(yaml_file), "--only", MULTI, *dirs(tmp_path)[:4], "--failures"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[2].startswith(f"cancelled: 1 run(s): {MULTI}"), lines
    retry = shlex.split(next(line for line in lines if line.startswith("  retry:  ")).removeprefix("  retry:  "))
    assert retry == ["mtl-launch", str(yaml_file), "--cluster", "faults", *dirs(tmp_path)[:4], "--only", MULTI], retry
    assert launch_main(retry[1:] + dirs(tmp_path)[4:]) == 0      # the command as printed (+ this test's logs dir)
    assert "submitted 1 runs" in capsys.readouterr().out
    finish_and_compare(run, refs.run_dir(SHORT), row)
    assert launch(yaml_file, tmp_path) == 0 and "nothing to submit" in capsys.readouterr().out
    row.epochs_lost = fm.lost_after_signals(run, SHORT)
    row.outcome = ("SIGTERM -> checkpoint -> interrupted (CANCELLED), in mtl-status --failures as cancelled; "
                   "its retry command resumed it -> completed")


def _mount_tmpfs(where: Path, size_mb: int, *options: str) -> None:
    where.mkdir(parents=True, exist_ok=True)
    opts = ",".join([f"size={size_mb}m", *options])
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(where)], capture_output=True, text=True)
    if res.returncode != 0:
        pytest.fail(f"cannot mount a small filesystem (needs root): {res.stderr.strip()}", pytrace=False)


@pytest.fixture
def mounts() -> Iterator[list[Path]]:
    made: list[Path] = []
    yield made
    for m in reversed(made):
        subprocess.run(["umount", "-l", str(m)], capture_output=True)


@pytest.mark.fault(6, "the disk fills while a checkpoint is written", "results/ on a 150 MB filesystem (a checkpoint is ~95 MB)")
def test_disk_full_during_checkpoint(tmp_path, refs, row, mounts, capsys):
    yaml_file = study(tmp_path, SHORT)
    run = the_run(yaml_file, tmp_path)
    _mount_tmpfs(tmp_path / "results", 150)
    mounts.append(tmp_path / "results")
    assert launch(yaml_file, tmp_path) == 0
    job = job_of(tmp_path, run)
    wait(lambda: state(run) == "failed", 180, "the run to fail on the full disk", poll=0.5)
    reason = RunDir(run).read_status()["reason"]
    assert reason.startswith("disk full writing to") and "is intact" in reason and "--retry-failed" in reason, reason
    kept = list_checkpoints(run / "checkpoints")
    assert len(kept) == 1 and not list((run / "checkpoints").glob(".*.tmp")), list((run / "checkpoints").iterdir())
    import torch
    assert torch.load(kept[0], map_location="cpu", weights_only=True)["signature"]   # the old one reads
    wait(lambda: gone(job), 60, "the job to end")
    capsys.readouterr()
    assert launch(yaml_file, tmp_path) == 0
    assert "skip: failed (--retry-failed)" in capsys.readouterr().out              # not blindly retried
    subprocess.run(["mount", "-o", "remount,size=600m", str(tmp_path / "results")], check=True)
    assert launch(yaml_file, tmp_path, "--retry-failed") == 0
    finish_and_compare(run, refs.run_dir(SHORT), row)
    reached = fm.position_from_reason(reason, SHORT)
    row.epochs_lost = fm.epochs_lost(reached, fm.resumed_from(run, SHORT)[0], SHORT)
    row.outcome = ("failed: \"disk full writing to ... checkpoint ... is intact\"; previous checkpoint loads; "
                   "after space was freed, --retry-failed resumed it -> completed")


@pytest.mark.fault(7, "the newest checkpoint truncated on disk", "scancel, then the newest checkpoint cut to half its size")
def test_truncated_checkpoint(tmp_path, refs, row, capsys):
    yaml_file, run, job = start(tmp_path, SHORT)
    wait(lambda: progressed(run, SHORT, SHORT + 40) and len(list_checkpoints(run / "checkpoints")) == 2, 180,
         "the run into epoch 2 with two checkpoints", poll=0.3)
    assert launch(yaml_file, tmp_path, "--cancel") == 0
    wait(lambda: gone(job) and state(run) == "interrupted", 60, "the cancel")
    older, newest = list_checkpoints(run / "checkpoints")
    reached = fm.position(run, SHORT)
    with open(newest, "r+b") as f:
        f.truncate(newest.stat().st_size // 2)
    capsys.readouterr()
    assert launch(yaml_file, tmp_path) == 0
    finish_and_compare(run, refs.run_dir(SHORT), row)
    assert (run / "checkpoints" / (newest.name + ".damaged")).exists()
    assert f"resumed from {older.name}" in (run / "log.txt").read_text()
    row.epochs_lost = fm.epochs_lost(reached, fm.resumed_from(run, SHORT)[0], SHORT)
    row.outcome = "the damaged file renamed *.damaged and kept; resumed from the one before -> completed"


@pytest.mark.fault(8, "two `mtl-launch` of the same file at the same moment", "two processes started together")
def test_two_launches_at_once(tmp_path, row):
    yaml_file = study(tmp_path, SHORT)
    cmd = [sys.executable, "-c", "from mtl_cluster.cli.launch import entry_launch; entry_launch()",
           str(yaml_file), "--cluster", "faults", *dirs(tmp_path)]
    procs = [subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    runs = specs(yaml_file, tmp_path)
    records = list((tmp_path / "jobs").glob("*.json"))
    try:
        assert len(records) == 1, records
        assert sum("nothing to submit" in o for o, _ in outs) == 1, outs
        queued = subprocess.run(["squeue", "-r", "-h", "-o", "%i %o"], capture_output=True, text=True,
                                timeout=10).stdout
        mine = [line for line in queued.splitlines() if str(tmp_path) in line]
        assert len(mine) == len(runs) == 2, queued
    finally:
        subprocess.run(["scancel", *{latest_jobs(tmp_path / "jobs")[str(s.run_dir)].job_id.split("_")[0]
                                     for s in runs if str(s.run_dir) in latest_jobs(tmp_path / "jobs")}],
                       capture_output=True)
    row.outcome = "one launch submitted both runs, the other waited for the lock and found them queued: 2 jobs for 2 runs"
    row.epochs_lost = "0 (nothing ran twice)"
    row.identical = "n/a"


@pytest.mark.fault(9, "the results folder not writable", "results/ on a read-only filesystem")
def test_results_not_writable(tmp_path, row, mounts, capsys):
    yaml_file = study(tmp_path, SHORT)
    _mount_tmpfs(tmp_path / "results", 1, "ro")
    mounts.append(tmp_path / "results")
    rc = launch(yaml_file, tmp_path)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
    assert err[0].startswith("mtl-launch: error: preflight: results folder") and "Read-only file system" in err[0]
    assert not list((tmp_path / "jobs").glob("*.json")) and not (tmp_path / "logs").exists()
    queued = subprocess.run(["squeue", "-h", "-o", "%o"], capture_output=True, text=True, timeout=10).stdout
    assert str(tmp_path) not in queued
    row.outcome = f"refused at preflight, nothing queued: `{err[0].replace(str(tmp_path), '<tmp>')}`"
    row.epochs_lost = "0 (nothing ran)"
    row.identical = "n/a"


@pytest.mark.fault(10, "the time limit hit more often than `max_requeues` allows",
                   "a 1-minute limit with max_requeues: 1; then a relaunch with a longer limit")
def test_max_requeues_exhausted_then_relaunch(tmp_path, refs, row, capsys):
    # USR2 10-40 s into each attempt, so that both attempts really train (a signal during start-up is
    # caught, but that attempt never begins and the count below would be 1)
    yaml_file, run, job = start(tmp_path, LONG, timeout_min=1, max_requeues=1, signal_delay_s=20)
    wait(lambda: gone(job) and state(run) != "running", 400, "the job to give up after its requeues", poll=1)
    st = RunDir(run).read_status()
    assert st["state"] == "interrupted" and st["attempts"] == 2, st
    assert "timed-out too many times" in "".join(p.read_text() for p in (tmp_path / "logs").rglob("*.err"))
    capsys.readouterr()
    assert status_main([str(yaml_file), "--only", MULTI, *dirs(tmp_path)[:4]]) == 0
    assert "interrupted" in capsys.readouterr().out
    assert launch(yaml_file, tmp_path, cluster="roomy") == 0          # same run (the limit is not its identity)
    assert "resume" in capsys.readouterr().out
    finish_and_compare(run, refs.run_dir(LONG), row)
    row.epochs_lost = fm.lost_after_signals(run, LONG)
    row.outcome = ("requeued once, then submitit stopped (\"timed-out too many times\"): interrupted with its "
                   "checkpoint; a relaunch with a longer limit resumed it -> completed")


@pytest.fixture
def over_memory_kill() -> Iterator[None]:
    """slurm.conf's JobAcctGatherParams=OverMemoryKill, sampled every 2 s (scontrol reconfigure; restored). This
    machine's Slurm has no cgroups (task/none, proctrack/linuxproc), so this is how it enforces a job's memory:
    slurmstepd samples the RSS of the job's processes and kills a step over its limit."""
    conf = Path("/etc/slurm/slurm.conf")
    before = conf.read_text()
    assert "\nJobAcctGatherFrequency=10\n" in before and "JobAcctGatherParams" not in before
    try:
        conf.write_text(before.replace("\nJobAcctGatherFrequency=10\n",
                                       "\nJobAcctGatherFrequency=2\nJobAcctGatherParams=OverMemoryKill\n"))
        assert subprocess.run(["scontrol", "reconfigure"], timeout=60).returncode == 0
        wait(lambda: "OverMemoryKill" in _show_config(), 30, "OverMemoryKill to take")
        yield
    finally:
        conf.write_text(before)
        subprocess.run(["scontrol", "reconfigure"], timeout=60)
    wait(lambda: "OverMemoryKill" not in _show_config(), 30, "OverMemoryKill to be gone")


def _show_config() -> str:
    return subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, timeout=30).stdout


def _failures(yaml_file: Path, tmp: Path, capsys) -> tuple[list[str], list[str]]:
    """mtl-status --failures (no --cluster: the retry names the one the jobs/ records give): its lines, and its
    one retry command as words."""
    capsys.readouterr()
    assert status_main([str(yaml_file), "--only", MULTI, *dirs(tmp)[:4], "--failures"]) == 0
    lines = capsys.readouterr().out.splitlines()
    retries = [line.removeprefix("  retry:  ") for line in lines if line.startswith("  retry:  ")]
    assert len(retries) == 1, lines
    return lines, shlex.split(retries[0])


@pytest.mark.fault(11, "the job goes over its memory limit",
                   "mem_gb 1 (the trainer holds ~1.1 GB) under JobAcctGatherParams=OverMemoryKill")
def test_out_of_memory_then_the_printed_retry(tmp_path, refs, row, capsys, over_memory_kill):
    yaml_file = study(tmp_path, SHORT)
    run = the_run(yaml_file, tmp_path)
    assert launch(yaml_file, tmp_path, "--resources", "mem_gb=1") == 0
    job = job_of(tmp_path, run)
    wait(lambda: gone(job), 180, "Slurm to kill the job for its memory")
    # sacct does not say memory here (that takes cgroups): FAILED, and the kill is in the job's own log
    assert sacct(job, "JobID,State,ExitCode")[job][:2] == ["FAILED", "9:0"], sacct(job, "JobID,State,ExitCode")
    reached = fm.position(run, SHORT)
    lines, retry = _failures(yaml_file, tmp_path, capsys)
    assert lines[0] == "1 of 1 runs need attention, in 1 group(s): 1 out of memory", lines
    assert lines[2] == f"out of memory: 1 run(s): {MULTI}", lines
    slurm = next(line for line in lines if line.startswith("  slurm:  "))
    assert re.search(r"^  slurm:  slurmstepd\S*: error: StepId=\S+ exceeded memory limit \(\d+ > 1073741824\), "
                     r"being killed$", slurm), slurm
    assert next(line for line in lines if line.startswith("  log:    ")).endswith("_log.err"), lines
    assert "  note:   had 1 GB; retried with 2 GB" in lines, lines
    assert retry == ["mtl-launch", str(yaml_file), "--cluster", "faults", *dirs(tmp_path)[:4], "--only", MULTI,
                     "--resources", "mem_gb=2"], retry
    assert launch_main(retry[1:] + dirs(tmp_path)[4:]) == 0      # the command as printed (+ this test's logs dir)
    assert "submitted 1 runs" in capsys.readouterr().out
    finish_and_compare(run, refs.run_dir(SHORT), row)           # under OverMemoryKill still, with 2 GB
    again = job_of(tmp_path, run)
    wait(lambda: sacct(again).get(again, [""])[0] == "COMPLETED", 60, "sacct COMPLETED")
    # mtl-collect --cost: sacct's MaxRSS (over both jobs: the killed one went past 1 GB) beside the run's own peak
    capsys.readouterr()
    assert collect_main([str(tmp_path / "results"), "--cost", "--format", "json", "--no-image-tests"]) == 0
    (cells,) = [r["cells"] for s in json.loads(capsys.readouterr().out)["cost"]["sections"] for r in s["rows"]]
    assert cells["sacct_rss_mib"]["max"] > 1024 and cells["host_peak_mib"]["max"] > 500, cells
    assert 0 < cells["sacct_cpu_used"]["mean"] < 250, cells
    row.epochs_lost = fm.epochs_lost(reached, fm.resumed_from(run, SHORT)[0], SHORT)
    row.outcome = ("killed by slurmstepd (sacct FAILED 9:0; \"exceeded memory limit\" in the job log); "
                   "mtl-status --failures: out of memory, retry with --resources mem_gb=2; run as printed -> resumed "
                   "-> completed")


@pytest.mark.fault(12, "every attempt killed before its first checkpoint, requeued by Slurm",
                   "`scontrol requeue` twice, each during a 10 s step (KillWait is 5 s)")
def test_requeued_without_progress_stops_as_stalled(tmp_path, row, capsys):
    yaml_file = study(tmp_path, 3)
    text = yaml_file.read_text()
    for old, new in (("image_size: 64", "image_size: 224"), ("batch_size: 8", "batch_size: 64"), ("epoch: 3", "epoch: 1"),
                     ("checkpoint_every_min: 0.05", "checkpoint_every_min: 60"),
                     ("loss_weights: [1, 1, 1, 1]\n", "loss_weights: [1, 1, 1, 1]\n    resources: {mem_gb: 4}\n")):
        assert old in text
        text = text.replace(old, new, 1)
    yaml_file.write_text(text)
    run = the_run(yaml_file, tmp_path)
    assert launch(yaml_file, tmp_path) == 0
    job = job_of(tmp_path, run)
    for attempt in (1, 2):      # each attempt is killed in its first step: SIGTERM, then SIGKILL 5 s later
        wait(lambda: state(run) == "running" and RunDir(run).read_status().get("attempts") == attempt, 180,
             f"attempt {attempt} to start", poll=0.3)
        subprocess.run(["scontrol", "requeue", job], check=True, timeout=30)
        wait(lambda: state(run) != "running" or RunDir(run).read_status().get("attempts") != attempt, 120,
             f"attempt {attempt} to be killed", poll=0.3)
    wait(lambda: state(run) == "failed", 180, "the third attempt to stop as stalled")
    st = RunDir(run).read_status()
    assert st["cause"] == "stalled" and st["attempts"] == 3, st
    assert all(c.name == NO_CHECKPOINT for c in list_checkpoints(run / "checkpoints")), \
        list_checkpoints(run / "checkpoints")              # none, or one saved before the first step
    wait(lambda: gone(job), 60, "the job to end, not requeued")
    lines, retry = _failures(yaml_file, tmp_path, capsys)
    assert lines[2] == f"stalled: no progress across requeues: 1 run(s): {MULTI}", lines
    assert ("  reason: stalled: attempts 1 to 2 all started from the first step (no checkpoint) and none got further "
            "(killed without a checkpoint: preemption with a short grace time, memory, a failing node), so it is not "
            "requeued again; see the job logs and sacct, then mtl-launch --retry-failed") in lines, lines
    assert retry == ["mtl-launch", str(yaml_file), "--cluster", "faults", *dirs(tmp_path)[:4], "--only", MULTI,
                     "--retry-failed"], retry
    assert launch_main(retry[1:] + dirs(tmp_path)[4:]) == 0
    assert "submitted 1 runs" in capsys.readouterr().out
    wait(lambda: state(run) == "completed", 300, "the retried run to complete", poll=2)
    starts = [a for a in map(json.loads, (run / "attempts.jsonl").read_text().splitlines()) if a["event"] == "start"]
    assert len(starts) == 4 and starts[-1]["previous"]["state"] == "failed", starts
    row.epochs_lost, row.identical = "0.00", "n/a (224 px config)"
    row.outcome = ("attempts 1 and 2 started from no checkpoint and were killed in their first step; attempt 3 "
                   "stopped as stalled (exit 1, not requeued); mtl-status --failures: stalled, retry "
                   "--retry-failed; run as printed -> completed")

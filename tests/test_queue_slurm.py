"""A queue the user can read (issue 23), on the REAL local Slurm (scripts/slurm_local.sh start): why a job waits
in plain words with Slurm's expected start, the cluster's own limits checked before anything is queued, a
throttle for a running study. Every test leaves the cluster as it found it (jobs cancelled, limits restored).
"""
from __future__ import annotations

import json
import os
import re
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
{extra}"""


@pytest.fixture(scope="module", autouse=True)
def cluster() -> None:
    require_cluster()


def _run(*cmd: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout)


def _study(tmp: Path, name: str, partition: str = "gpu", timeout: int = 5, extra: str = "", seeds: int = 1) -> Path:
    path = tmp / f"{name}.yaml"
    text = STUDY.format(partition=partition, timeout=timeout, extra=extra)
    path.write_text(text + (f"grid:\n  seed: {list(range(seeds))}\n" if seeds > 1 else ""))
    return path


def _nothing_queued(tmp: Path, name: str) -> None:
    """Preflight refused: no job in squeue, no launch record, no journal."""
    assert _squeue(name) == {}, _squeue(name)
    assert not list((tmp / "jobs").glob("*.json")) and not list((tmp / "jobs").glob("journal/*.jsonl"))


def _error(capsys) -> str:
    err = capsys.readouterr().err
    lines = [x for x in err.splitlines() if x.startswith("mtl-launch: error: ")]
    assert len(lines) == 1, err
    return lines[0]


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


def _partition_field(name: str, key: str) -> str:
    words = _run("scontrol", "show", "partition", name, "-o").stdout.split()
    return next(w.split("=", 1)[1] for w in words if w.startswith(f"{key}="))


def test_preflight_refuses_a_time_limit_above_the_partitions_maxtime(tmp_path, capsys, cleanup):
    """Partition debug's MaxTime lowered to 1 minute at run time (scontrol update; restored): a profile asking
    5 minutes is refused in one line naming the limit, its value and the command it came from; nothing is
    queued (squeue, jobs/)."""
    yaml_file = _study(tmp_path, "maxtimestudy", partition="debug", timeout=5)
    cleanup.append("name:maxtimestudy")
    before = _partition_field("debug", "MaxTime")
    try:
        assert _run("scontrol", "update", "PartitionName=debug", "MaxTime=1").returncode == 0
        assert launch_main([str(yaml_file), "--cluster", "test", *dirs(tmp_path)]) == 2
        assert _error(capsys) == (
            "mtl-launch: error: preflight: clusters.test: timeout_min 5 is above partition debug's MaxTime "
            "00:01:00 (1 min, scontrol show partition debug): the job would never start (PartitionTimeLimit); "
            "lower timeout_min to 1 or less (--no-preflight to submit anyway)")
        _nothing_queued(tmp_path, "maxtimestudy")
    finally:
        _run("scontrol", "update", "PartitionName=debug", f"MaxTime={before}")
    assert _partition_field("debug", "MaxTime") == before


@pytest.mark.parametrize("extra, line", [
    ('    qos: nosuchqos\n', "clusters.test: QOS 'nosuchqos' does not exist (sacctmgr show qos: normal)"),
    ('    account: nosuchacct\n', "clusters.test: account 'nosuchacct' is not one of yours (sacctmgr show assoc: "
                                   "root)"),
    ("", "partition gpu has no GRES 'mps' (scontrol show partition gpu: TRES="),
    ("", "partition 'nosuch' does not exist (sinfo)"),
], ids=["qos", "account", "gres", "partition"])
def test_preflight_refuses_what_the_cluster_does_not_have(tmp_path, capsys, cleanup, extra, line):
    """An unknown QOS or account (sacctmgr), a GRES the partition lacks (scontrol show partition), an unknown
    partition (sinfo): one line naming it and where it was looked up; nothing queued."""
    yaml_file = _study(tmp_path, "refusestudy", extra=extra, partition="nosuch" if "nosuch'" in line else "gpu")
    if "mps" in line:
        yaml_file.write_text(yaml_file.read_text().replace('gres: "gpu:1"', 'gres: "mps:1"'))
    cleanup.append("name:refusestudy")
    assert launch_main([str(yaml_file), "--cluster", "test", *dirs(tmp_path)]) == 2
    error = _error(capsys)
    assert error.startswith("mtl-launch: error: preflight: ") and line in error, error
    _nothing_queued(tmp_path, "refusestudy")


def test_arrays_are_split_at_the_clusters_max_array_size(tmp_path, capsys, cleanup):
    """slurm.conf's MaxArraySize set to 3 (scontrol reconfigure; restored): a study of 9 runs (three arrays of
    3 seeds) is queued in arrays of at most 2 tasks, said in one line; --dry-run shows the MaxArraySize read."""
    conf = Path("/etc/slurm/slurm.conf")
    before = conf.read_text()
    assert "\nMaxArraySize=1001\n" in before
    yaml_file = _study(tmp_path, "chunkstudy", seeds=3)
    cleanup.append("name:chunkstudy")
    args = [str(yaml_file), "--cluster", "test", *dirs(tmp_path)]
    try:
        conf.write_text(before.replace("\nMaxArraySize=1001\n", "\nMaxArraySize=3\n"))
        assert _run("scontrol", "reconfigure").returncode == 0
        wait(lambda: "MaxArraySize            = 3" in _run("scontrol", "show", "config").stdout, 30,
             "MaxArraySize=3 to take")
        assert launch_main([*args, "--dry-run"]) == 0
        out = capsys.readouterr()
        assert "limit: scontrol show config: MaxArraySize=3 MaxJobCount=" in out.out
        split = ("mtl-launch: arrays split at 2 runs: MaxArraySize is 3 (scontrol show config; "
                 "clusters.test.max_array_size is 1000)")
        assert split in out.err.splitlines(), out.err
        _blocker(cleanup)                                    # the study's jobs wait: nothing trains
        assert launch_main(args) == 0
        out = capsys.readouterr()
        assert split in out.err.splitlines(), out.err
        record = json.loads(next((tmp_path / "jobs").glob("*.json")).read_text())
        assert sorted(a["size"] for a in record["arrays"]) == [1, 1, 1, 2, 2, 2], record["arrays"]
        assert len(_squeue("chunkstudy")) == 9
    finally:
        conf.write_text(before)
        _run("scontrol", "reconfigure")
    wait(lambda: "MaxArraySize            = 1001" in _run("scontrol", "show", "config").stdout, 30,
         "MaxArraySize=1001 to be back")


def test_dry_run_shows_the_limits_read_and_a_hidden_limit_is_a_note(tmp_path, capsys, monkeypatch):
    """--dry-run prints the limits it read (scontrol show config/partition); a sacctmgr that says permission
    denied (a stand-in on PATH) is a note, and the dry run still succeeds."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "sacctmgr").write_text("#!/bin/sh\necho 'sacctmgr: error: Access/permission denied' >&2\nexit 1\n")
    (fake / "sacctmgr").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}:{os.environ['PATH']}")
    yaml_file = _study(tmp_path, "hiddenstudy")
    assert launch_main([str(yaml_file), "--cluster", "test", "--dry-run", *dirs(tmp_path)]) == 0
    out = capsys.readouterr()
    assert "limit: scontrol show partition gpu: MaxTime=UNLIMITED State=UP GRES=gpu" in out.out.splitlines()
    assert ("mtl-launch: note: sacctmgr show assoc failed: sacctmgr: error: Access/permission denied (no "
            "accounting here?): account and QOS limits not checked") in out.err.splitlines(), out.err
    assert "limit: sacctmgr" not in out.out


def test_throttle_a_running_study(tmp_path, capsys, cleanup):
    """An array of 3 runs queued behind the blocker, then --throttle 1: scontrol shows ArrayTaskThrottle=1 on
    the array, the jobs/ record keeps it, mtl-status shows it; once the GPUs free up one task runs and the
    others wait for the throttle (JobArrayTaskLimit), which mtl-status says in words."""
    blocker = _blocker(cleanup)
    yaml_file = _study(tmp_path, "throttlestudy", seeds=3)
    cleanup.append("name:throttlestudy")
    args = [str(yaml_file), "--cluster", "test", "--only", "other", *dirs(tmp_path)]
    assert launch_main(args) == 0
    record_file = next((tmp_path / "jobs").glob("*.json"))
    record = json.loads(record_file.read_text())
    assert [(a["size"], a["parallelism"]) for a in record["arrays"]] == [(3, 3)], record["arrays"]
    array = record["arrays"][0]["job_id"]
    capsys.readouterr()
    assert launch_main([*args, "--throttle", "1"]) == 0
    out = capsys.readouterr().out
    assert (f"throttled 1 array(s) to 1 task(s) at once: job(s) {array} (scontrol update ArrayTaskThrottle=1); "
            f"recorded in {record_file}") in out, out
    assert "ArrayTaskThrottle=1" in _run("scontrol", "show", "job", array).stdout
    record = json.loads(record_file.read_text())
    assert record["arrays"][0]["throttle"] == 1 and record["throttles"][0]["arrays"] == [array]
    status = [str(yaml_file), "--only", "other", *dirs(tmp_path)[:4]]
    assert status_main(status) == 0
    out = capsys.readouterr().out
    assert f"array {array}: 1 task(s) at once (mtl-launch --throttle 1, {record['throttles'][0]['time']})" in out
    _run("scancel", blocker)
    wait(lambda: sorted(r for _s, r in _squeue("throttlestudy").values()) == ["JobArrayTaskLimit"] * 2 + ["None"],
         90, "one task to run and two to wait for the throttle")
    assert status_main(status) == 0
    out = capsys.readouterr().out
    assert "2 queued run(s) waiting for a slot in its array's throttle (%N) [JobArrayTaskLimit]: " in out, out


def test_eta_column_and_study_eta_for_a_running_study(tmp_path, capsys, cleanup):
    """Two runs in one array, one at a time (array_parallelism 1), 3 epochs of 60 steps: once the first has
    trained a step, mtl-status fills its ETA column from the measured step time (rough, "~", before its first
    epoch ends) and prints the study ETA line: the queued run after it, in its array's one slot."""
    yaml_file = _study(tmp_path, "etastudy", seeds=2, extra="    array_parallelism: 1\n")
    yaml_file.write_text(yaml_file.read_text().replace("epoch: 1\n", "epoch: 3\n")
                         .replace("steps_per_epoch: 4", "steps_per_epoch: 60"))
    cleanup.append("name:etastudy")
    args = [str(yaml_file), "--cluster", "test", "--only", "other", *dirs(tmp_path)]
    assert launch_main(args) == 0
    first = next(s for s in specs(yaml_file, tmp_path, only=["other"]) if s.config.seed == 0)
    from mtl_cluster.rundir import RunDir
    wait(lambda: RunDir(first.run_dir).read_status().get("step_seconds"), 120, "the first run's first step")
    capsys.readouterr()
    assert status_main([str(yaml_file), "--only", "other", *dirs(tmp_path)[:4]]) == 0
    out = capsys.readouterr().out
    row = next(x for x in out.splitlines() if x.startswith(f"│ {first.label} "))
    cells = [c.strip() for c in row.split("│")[1:-1]]
    assert cells[1].startswith("running") and re.fullmatch(r"~\d+(s|m\d\ds)", cells[3]), row
    study = [x for x in out.splitlines() if x.startswith("study ETA: ")]
    assert len(study) == 1 and re.fullmatch(
        r"study ETA: the last run should end at \d\d:\d\d \(in ~\d+(s|m\d\ds)\): 1 running, 1 queued in 1 "
        r"array\(s\), from measured epoch and step times, the arrays' parallelism and the dependencies", study[0]), out


def _restart_slurmctld() -> None:
    """Restart slurmctld the way scripts/slurm_local.sh starts it (AccountingStorageEnforce needs a restart)."""
    pid_file = Path(os.environ.get("MTL_SLURM_STATE", "/var/tmp/mtl-slurm")) / "run" / "slurmctld.pid"
    pid = int(pid_file.read_text().split()[0])
    os.kill(pid, 15)
    wait(lambda: not Path(f"/proc/{pid}").exists(), 30, "slurmctld to stop")
    log = pid_file.parent.parent / "log" / "slurmctld.out"
    with open(log, "a") as out:
        subprocess.run(["slurmctld", "-i"], stdin=subprocess.DEVNULL, stdout=out, stderr=out, timeout=60, check=True)
    wait(lambda: "is UP" in _run("scontrol", "ping").stdout, 60, "slurmctld to answer")


@pytest.fixture
def enforced_qos() -> Iterator[str]:
    """QOS mtlqos (MaxSubmitJobsPerUser=3, MaxTRESPerUser=gres/gpu=1) for root, under
    AccountingStorageEnforce=limits,qos (slurm.conf + a slurmctld restart); all of it undone afterwards."""
    conf = Path("/etc/slurm/slurm.conf")
    before = conf.read_text()
    assert "AccountingStorageEnforce" not in before
    try:
        conf.write_text(before.replace("AccountingStorageTRES=gres/gpu\n",
                                       "AccountingStorageTRES=gres/gpu\nAccountingStorageEnforce=limits,qos\n"))
        assert _run("sacctmgr", "-i", "add", "qos", "mtlqos", "MaxSubmitJobsPerUser=3",
                    "MaxTRESPerUser=gres/gpu=1").returncode == 0
        assert _run("sacctmgr", "-i", "modify", "user", "root", "set", "qos+=mtlqos").returncode == 0
        _restart_slurmctld()
        yield "mtlqos"
    finally:
        _run("scancel", "--qos=mtlqos")
        conf.write_text(before)
        _restart_slurmctld()
        _run("sacctmgr", "-i", "modify", "user", "root", "set", "qos-=mtlqos")
        _run("sacctmgr", "-i", "delete", "qos", "mtlqos")
    assert "AccountingStorageEnforce = none" in _run("scontrol", "show", "config").stdout
    assert "mtlqos" not in _run("sacctmgr", "-nP", "show", "qos", "format=name").stdout


def test_qos_limits_reshape_the_launch_and_name_the_wait(tmp_path, capsys, cleanup, enforced_qos):
    """Under an enforced QOS with MaxTRESPerUser=gres/gpu=1 and MaxSubmitJobsPerUser=3, one job of ours in it
    already: a dry run of 5 one-GPU runs (array_parallelism 4) says the array is throttled to 1 and that 2 of
    the 5 runs are submitted now (the rest held back); a launch of 2 runs is accepted by Slurm, and both
    wait for the QOS's GPU cap, which mtl-status says in words."""
    res = _run("sbatch", "--parsable", "--qos", enforced_qos, "-p", "gpu", "--gres=gpu:1", "-c", "1", "--mem=100M",
               "--time=10", "-J", "mtl-test-blocker", "-o", "/dev/null", "--wrap", "sleep 600")
    assert res.returncode == 0, res.stderr
    cleanup.append(res.stdout.strip())
    wait(lambda: _run("squeue", "-h", "-j", res.stdout.strip(), "-o", "%T").stdout.strip() == "RUNNING", 60,
         "the blocker to run")
    extra = f"    qos: {enforced_qos}\n    array_parallelism: 4\n"
    many = _study(tmp_path, "qosmany", seeds=5, extra=extra)
    assert launch_main([str(many), "--cluster", "test", "--only", "other", "--dry-run", *dirs(tmp_path)]) == 0
    out = capsys.readouterr()
    assert f"limit: sacctmgr show qos {enforced_qos}: MaxSubmitJobsPerUser=3 MaxTRESPerUser=gres/gpu=1 MaxWall=- " \
           f"GrpTRES=-" in out.out.splitlines(), out.out
    assert (f"mtl-launch: array parallelism throttled to 1: QOS {enforced_qos}'s MaxTRESPerUser gres/gpu=1 (sacctmgr "
            f"show qos) runs 1 task(s) of 1 GPU(s) at once") in out.err.splitlines(), out.err
    assert (f"mtl-launch: 2 of 5 runs submitted now: QOS {enforced_qos}'s MaxSubmitJobsPerUser (sacctmgr show qos) "
            f"is 3 and 1 of your jobs are queued; launch again as they end for the rest") in out.err.splitlines()
    assert out.out.count("skip: held back: over MaxSubmitJobs; launch again later") == 3
    assert "#SBATCH --array=0-1%1" in out.out                      # the 2 kept, one at a time

    (tmp_path / "two").mkdir()
    two = _study(tmp_path / "two", "qostwo", extra=extra)
    cleanup.append("name:qostwo")
    assert launch_main([str(two), "--cluster", "test", "--only", "pre", "other", *dirs(tmp_path / "two")]) == 0
    assert "submitted 2 runs" in capsys.readouterr().out
    wait(lambda: sorted(r for _s, r in _squeue("qostwo").values()) == ["QOSMaxGRESPerUser"] * 2, 60,
         "both runs to wait for the QOS's GPU cap")
    assert status_main([str(two), "--only", "pre", "other", *dirs(tmp_path / "two")[:4]]) == 0
    out = capsys.readouterr().out
    assert "2 queued run(s) your QOS's cap on GPUs per user is reached by your running jobs [QOSMaxGRESPerUser]: " \
        in out, out

"""Failures triaged by cause (mtl_cluster/launch/triage.py) on run folders that real trainers left: a NaN loss,
missing data, a stalled run (SIGKILLed twice), a job killed for memory or at its time limit (the folder a kill
leaves, with the end state sacct gives such a job); each group with its retry command and resource change."""
from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TINY, killed_after_start, run_cli, sets, train_cmd

from mtl_cluster.config import load_train_config, signature
from mtl_cluster.launch.clusters import profile_from_dict
from mtl_cluster.launch.grid import RunSpec
from mtl_cluster.launch.ledger import JobRef
from mtl_cluster.launch.status import run_status
from mtl_cluster.launch.triage import check_words, retry_words, triage, verdict
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
    assert check_words(data, LAUNCH) == ["mtl-data", "check", "experiments.yaml", "--cluster", "narvi"]
    assert check_words(data, ["mtl-launch", "experiments.yaml", "--debug"]) is None and check_words(nan, LAUNCH) is None


def test_the_retry_commands_resource_change_reaches_the_sbatch_script(tmp_path: Path) -> None:
    """``--resources mem_gb=96`` (what an OOM group's retry carries) is in the script sbatch gets, over the
    profile's; a key that is not a resource, or a bad value, is one line and exit 2."""
    base = ["mtl-launch", str(Path("experiments.yaml").absolute()), "--cluster", "narvi", "--dry-run",
            "--only", "AlexNet-Age", "--results", str(tmp_path / "r"), "--jobs-dir", str(tmp_path / "j")]
    exe = [str(Path(sys.executable).parent / "mtl-launch")]
    plain = run_cli(exe + base[1:])
    more = run_cli(exe + base[1:] + ["--resources", "mem_gb=96"])
    assert plain.returncode == more.returncode == 0, more.stderr
    assert "#SBATCH --mem=96GB" in more.stdout and "#SBATCH --mem=96GB" not in plain.stdout
    for bad, says in (("foo=1", "--resources.foo: not a per-experiment resource"),
                      ("mem_gb=-3", "--resources.mem_gb: must be a number > 0"), ("mem_gb", "expected key=value")):
        res = run_cli(exe + base[1:] + ["--resources", bad])
        lines = res.stderr.strip().splitlines()
        assert res.returncode == 2 and len(lines) == 1 and says in lines[0], res.stderr


def test_mtl_status_failures_prints_each_group_and_its_retry_command_works(tmp_path: Path, capsys) -> None:
    """A local launch whose runs' loss explodes: ``mtl-status --failures`` names the group, its runs, a log and
    the mtl-launch command that retries them; that very command, run, retries them (and they fail again)."""
    import shlex

    from mtl_cluster.cli.launch import launch_main
    from mtl_cluster.cli.status import status_main

    grid = [str(Path("experiments.yaml").absolute()), "--debug", "--only", "AlexNet-Smile", "--set", "lr_rate=1e30",
            "--set", "epoch=1", "--results", str(tmp_path / "results"), "--jobs-dir", str(tmp_path / "jobs")]
    assert launch_main(grid + ["--logs-dir", str(tmp_path / "logs")]) == 1
    capsys.readouterr()
    assert status_main(grid + ["--failures"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    runs = len(list((tmp_path / "results").rglob("status.json")))
    assert runs >= 1 and lines[0].startswith(f"{runs} of {runs} runs need attention, in 1 group(s): {runs} NaN/inf")
    assert lines[2].startswith(f"NaN/inf loss: {runs} run(s): AlexNet-Smile"), out
    assert lines[3].startswith("  reason: loss is nan") or lines[3].startswith("  reason: loss is inf"), out
    log = lines[4].removeprefix("  log:    ")
    assert Path(log).name == "log.txt" and Path(log).is_file(), out
    assert "lower lr_rate" in lines[5]
    retry = shlex.split(lines[6].removeprefix("  retry:  "))
    assert retry == ["mtl-launch", *grid[:2], "--set", "lr_rate=1e30", "--set", "epoch=1", *grid[8:], "--only",
                     "AlexNet-Smile", "--retry-failed"], retry
    assert launch_main(retry[1:] + ["--logs-dir", str(tmp_path / "logs")]) == 1
    assert "retry" in capsys.readouterr().out
    healthy = grid[:4] + grid[6:]
    assert status_main(healthy + ["--failures"]) == 0   # another grid (other folders): nothing failed there
    assert capsys.readouterr().out.startswith("no failed, stalled or killed runs among the")


KILL_LINES = [   # what slurmstepd writes into a job's stderr when it kills the job (Slurm 22.05)
    ("slurmstepd-vm: error: StepId=875.0 exceeded memory limit (1223421952 > 1073741824), being killed",
     Cause.OOM),                                                     # jobacct_gather's OverMemoryKill
    ("slurmstepd: error: Detected 1 oom-kill event(s) in StepId=5001.batch. Some of your processes may have been "
     "killed by the cgroup out-of-memory handler.", Cause.OOM),      # cgroups
    ("slurmstepd: error: *** JOB 5002 ON gpu17 CANCELLED AT 2026-12-06T10:00:00 DUE TO TIME LIMIT ***",
     Cause.TIMEOUT),
    ("slurmstepd: error: *** JOB 5003 ON gpu17 CANCELLED AT 2026-12-06T10:00:00 DUE TO NODE FAILURE, SEE SLURMCTLD "
     "LOG FOR DETAILS ***", Cause.NODE_FAIL),
]


@pytest.mark.parametrize("line,cause", KILL_LINES)
def test_slurms_kill_line_in_the_job_log_names_the_cause(folders, tmp_path: Path, line: str, cause: Cause) -> None:
    """A job sacct calls FAILED (what OverMemoryKill leaves) whose stderr has slurmstepd's kill line: the group is
    that line's cause, shows the line, and points at the stderr file; the trainer's own cause still comes first."""
    out = tmp_path / "4242_0_0_log.out"
    out.write_text("submitit INFO (2026-12-06) - Starting with JobEnvironment(job_id=4242_0)\n")
    out.with_name("4242_0_0_log.err").write_text("training...\nslurmstepd-vm: error: Exceeded job memory limit\n"
                                                 * (cause != Cause.OOM) + line + "\n")
    run, args = folders["killed"]
    job = JobRef("4242_0", "narvi", str(out), "jobs/x.json")
    (group,) = triage([run_status(_spec(run, "AlexNet-Age", args), job, "FAILED")], None)
    assert group.cause == cause and group.evidence is not None and group.evidence.line == line
    assert group.log == str(out.with_name("4242_0_0_log.err"))
    nan_run, nan_args = folders["nan-a"]       # a NaN run whose job log also says memory: NaN
    assert verdict(run_status(_spec(nan_run, "nan", nan_args), job, "FAILED")).cause == Cause.NAN


def test_a_kill_line_not_from_slurmstepd_is_not_evidence(folders, tmp_path: Path) -> None:
    """The trainer's own output that happens to say "exceeded memory limit" is not Slurm's word."""
    out = tmp_path / "4242_0_0_log.out"
    out.write_text("")
    out.with_name("4242_0_0_log.err").write_text("my code: exceeded memory limit (1 > 0), being killed\n")
    run, args = folders["killed"]
    (group,) = triage([run_status(_spec(run, "AlexNet-Age", args), JobRef("4242_0", "narvi", str(out), "j"),
                                  "FAILED")], None)
    assert group.cause == Cause.EXCEPTION and group.evidence is None


def test_the_memory_a_retry_doubles_is_what_slurm_gave_the_last_attempt(folders, tmp_path: Path) -> None:
    """A run launched with --resources mem_gb=1 over a profile of 12: its start line records 1024 MiB from Slurm,
    so the retry asks for 2 GB, not 24."""
    run = tmp_path / "run"
    shutil.copytree(folders["killed"][0], run)
    recs = [json.loads(x) for x in RunDir(run).attempts_file.read_text().splitlines()]
    for rec in recs:
        if rec.get("event") == "start":
            rec["slurm"] = {"time_limit_s": 3600.0, "mem_mib": 1024.0}
    RunDir(run).attempts_file.write_text("".join(json.dumps(r) + "\n" for r in recs))
    prof = profile_from_dict("narvi", {"partition": "gpu", "mem_gb": 12, "timeout_min": 90}, "clusters.narvi")
    (group,) = triage([run_status(_spec(run, "AlexNet-Age", folders["killed"][1]), *_job("OUT_OF_MEMORY"))], prof)
    assert group.resources == {"mem_gb": 2} and group.hint.startswith("had 1 GB"), (group.resources, group.hint)
    (late,) = triage([run_status(_spec(run, "AlexNet-Age", folders["killed"][1]), *_job("TIMEOUT"))], prof)
    assert late.resources == {"timeout_min": 120} and late.hint.startswith("had 60 min"), (late.resources, late.hint)


TRIAGE_STUDY = """\
defaults:
  dataset: synthetic
  image_size: 64
  batch_size: 8
  device: cpu
  epoch: 1
  steps_per_epoch: 4
  data: {synthetic_train_size: 16, synthetic_eval_size: 8}
experiments:
  - name: AlexNet-Smile
    loss_weights: [0, 1, 0, 0]
    lr_rate: 1.0e+12
  - name: AlexNet-Gender
    loss_weights: [1, 0, 0, 0]
    dataset: CVPR_16_ChaLearn
clusters:
  tri:
    executor: slurm
    partition: gpu
    gres: "gpu:1"
    cpus_per_task: 1
    mem_gb: 2
    timeout_min: 10
    data_root: {root}
    setup: ["export OMP_NUM_THREADS=1"]
"""


@pytest.mark.slurm
def test_on_slurm_a_nan_and_a_data_error_get_their_groups_and_retries(tmp_path: Path, capsys) -> None:
    """Two runs of one array on the local Slurm: one whose loss goes NaN, one whose data is not where the profile
    says (launched with --no-preflight, as the data check would refuse it), launched under umask 027, which the
    files the jobs wrote follow (0640). Once the array has left squeue,
    mtl-status --failures, given no --cluster, shows each group with its reason, log and the exact retry command,
    which names the cluster the jobs/ record gives."""
    from mtl_cluster.cli.launch import launch_main
    from mtl_cluster.cli.status import status_main
    from mtl_cluster.launch.ledger import latest_jobs
    from slurmkit import dirs, require_cluster, specs, state, wait
    require_cluster()
    yaml_file = tmp_path / "experiments.yaml"
    yaml_file.write_text(TRIAGE_STUDY.replace("{root}", str(tmp_path / "nowhere")))
    old = os.umask(0o027)            # sbatch passes the submitter's umask to the job (SLURM_UMASK)
    try:
        assert launch_main([str(yaml_file), "--cluster", "tri", "--no-preflight", *dirs(tmp_path)]) == 0
    finally:
        os.umask(old)
    runs = [s.run_dir for s in specs(yaml_file, tmp_path)]
    assert len(runs) == 2
    wait(lambda: all(state(r) == "failed" for r in runs), 180, "both runs to fail", poll=1)
    # what the job wrote follows the umask the launch had: the group reads, others do not
    written = [f for r in runs for f in r.iterdir() if f.is_file()] + list((tmp_path / "jobs").glob("*.json"))
    assert written and {f.name for f in written} >= {"status.json", "config.yaml"}
    assert {f.name: oct(f.stat().st_mode & 0o777) for f in written if f.stat().st_mode & 0o777 != 0o640} == {}
    array = {j.job_id.split("_")[0] for j in latest_jobs(tmp_path / "jobs").values()}
    assert len(array) == 1
    wait(lambda: not subprocess.run(["squeue", "-h", "-j", *array], capture_output=True, text=True,
                                    timeout=10).stdout.strip(), 60, "the array to leave squeue")
    capsys.readouterr()
    assert status_main([str(yaml_file), *dirs(tmp_path)[:4], "--failures"]) == 0
    out = capsys.readouterr().out
    launch = ["mtl-launch", str(yaml_file), "--cluster", "tri", *dirs(tmp_path)[:4]]
    assert out.splitlines()[0] == "2 of 2 runs need attention, in 2 group(s): 1 data error, 1 NaN/inf loss", out
    blocks = {b.splitlines()[0]: b.splitlines()[1:] for b in out.split("\n\n")[1:]}
    data, nan = blocks["data error: 1 run(s): AlexNet-Gender"], blocks["NaN/inf loss: 1 run(s): AlexNet-Smile"]
    assert data[0].startswith(f"  reason: ChaLearn gender data not found at {tmp_path / 'nowhere'}"), data
    assert nan[0].startswith("  reason: loss is nan at epoch 1 step "), nan
    assert f"  check:  mtl-data check {yaml_file} --cluster tri" in data, data      # what to check, exactly
    assert not [x for x in nan if x.startswith("  check:  ")], nan
    for lines, only in ((data, "AlexNet-Gender"), (nan, "AlexNet-Smile")):
        log = next(x for x in lines if x.startswith("  log:    ")).removeprefix("  log:    ")
        assert log.endswith("_log.out") and Path(log).is_file(), lines
        retry = next(x for x in lines if x.startswith("  retry:  ")).removeprefix("  retry:  ")
        assert shlex.split(retry) == [*launch, "--only", only, "--retry-failed"], retry

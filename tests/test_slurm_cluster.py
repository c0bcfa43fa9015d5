"""End-to-end checks against the REAL local one-node Slurm cluster.

Start it first with ``scripts/slurm_local.sh start`` (CI does).  If ``sinfo``
cannot reach a controller, every test here is skipped with a loud warning; set
``MTL_REQUIRE_SLURM=1`` to make that a failure instead (CI should).

The cluster (see docs/local_slurm.md): node = this host, partitions ``gpu``
(default) and ``debug``, two fake GPUs as ``gres/gpu``, accounting through
slurmdbd so ``sacct`` works, time limits enforced within 30 s.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

pytestmark = pytest.mark.slurm

submitit = pytest.importorskip("submitit")
import cloudpickle  # noqa: E402  (a dependency of submitit)

# The callables below are defined in this test module, which the job's Python
# cannot import (tests/ is not a package on its path): ship them by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])

TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL",
            "PREEMPTED", "BOOT_FAIL", "DEADLINE", "REVOKED"}
READY_NODE_STATES = {"idle", "mixed", "allocated", "completing"}
JOB_TIMEOUT_S = 180


def _run(cmd: list[str], timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def _skip_or_fail(reason: str) -> None:
    msg = (f"SLURM TESTS NOT RUN: {reason}. Start the cluster with "
           f"'scripts/slurm_local.sh start' (set MTL_REQUIRE_SLURM=1 to fail instead of skip).")
    if os.environ.get("MTL_REQUIRE_SLURM", "") not in ("", "0"):
        pytest.fail(msg, pytrace=False)
    # A warning shows in pytest's summary even with -q, so the skip is not silent.
    warnings.warn(msg, pytest.PytestWarning, stacklevel=2)
    print(f"\n{'!' * 20} {msg} {'!' * 20}", file=sys.stderr)
    pytest.skip(msg)


@pytest.fixture(scope="module", autouse=True)
def cluster() -> None:
    """The cluster must answer and its node must take jobs."""
    if shutil.which("sinfo") is None:
        _skip_or_fail("sinfo is not installed")
    try:
        res = _run(["sinfo", "-h", "-N", "-o", "%N %T"], timeout=30)
    except subprocess.TimeoutExpired:
        _skip_or_fail("sinfo timed out")
    if res.returncode != 0:
        _skip_or_fail(f"sinfo cannot reach slurmctld ({res.stderr.strip()[-200:]})")
    states = dict(line.split(None, 1) for line in res.stdout.split("\n") if line.strip())
    if not any(st.rstrip("*~#!%$@^-+").lower() in READY_NODE_STATES for st in states.values()):
        pytest.fail(f"slurm answers but no node takes jobs: {states}; "
                    f"run 'scripts/slurm_local.sh start' to resume it", pytrace=False)


def _sacct_states(job_id: str) -> dict[str, str]:
    """``{job or array-task id: state}`` of the allocations (no steps)."""
    res = _run(["sacct", "-X", "-n", "-P", "-j", job_id, "-o", "JobID,State"])
    assert res.returncode == 0, f"sacct failed: {res.stderr}"
    out = {}
    for line in res.stdout.splitlines():
        if "|" in line:
            jid, state = line.split("|", 1)
            out[jid] = state.split()[0] if state.strip() else ""  # "CANCELLED by 0"
    return out


def _wait_sacct(job_id: str, n_rows: int = 1, timeout: float = JOB_TIMEOUT_S) -> dict[str, str]:
    """Poll sacct until ``n_rows`` allocations of ``job_id`` are in a final state."""
    deadline = time.monotonic() + timeout
    states: dict[str, str] = {}
    while time.monotonic() < deadline:
        states = _sacct_states(job_id)
        done = {k: v for k, v in states.items() if v in TERMINAL}
        if len(done) >= n_rows and len(done) == len(states):
            return states
        time.sleep(1)
    _run(["scancel", job_id])
    squeue = _run(["squeue", "-j", job_id, "-o", "%i %T %r"]).stdout
    pytest.fail(f"job {job_id} not finished after {timeout}s: sacct={states} squeue={squeue!r}")


def _sbatch(*args: str) -> str:
    res = _run(["sbatch", "--parsable", *args])
    assert res.returncode == 0, f"sbatch {args} failed: {res.stderr}"
    return res.stdout.strip().split(";")[0]


@pytest.fixture(scope="module")
def gres_job(tmp_path_factory) -> tuple[str, Path]:
    """One finished ``sbatch --gres=gpu:1 --wrap`` job: (job id, its output file)."""
    out = tmp_path_factory.mktemp("gres") / "out.txt"
    jid = _sbatch("--gres=gpu:1", "--time=2", "-J", "mtl-gres", "-o", str(out),
                  "--wrap", 'echo "CVD=${CUDA_VISIBLE_DEVICES:-unset}"; echo "HOST=$(hostname -s)"')
    _wait_sacct(jid)
    return jid, out


def test_gres_job_sees_cuda_visible_devices(gres_job):
    jid, out = gres_job
    text = out.read_text()
    cvd = [line.split("=", 1)[1] for line in text.splitlines() if line.startswith("CVD=")]
    assert cvd, f"no CVD line in job {jid} output: {text!r}"
    assert cvd[0] in {"0", "1"}, f"CUDA_VISIBLE_DEVICES should be one fake GPU index, got {cvd[0]!r}"


def test_sacct_reports_completed(gres_job):
    jid, _ = gres_job
    assert _sacct_states(jid) == {jid: "COMPLETED"}
    res = _run(["sacct", "-X", "-n", "-P", "-j", jid, "-o", "AllocTRES,ExitCode"])
    tres, exit_code = res.stdout.strip().splitlines()[0].split("|")
    assert "gres/gpu=1" in tres, tres
    assert exit_code == "0:0"


def test_job_array_runs_all_tasks(tmp_path):
    jid = _sbatch("--array=0-2", "--time=2", "-J", "mtl-array", "-o", str(tmp_path / "task_%a.out"),
                  "--wrap", f'echo "$SLURM_ARRAY_TASK_ID" > {tmp_path}/done_$SLURM_ARRAY_TASK_ID')
    states = _wait_sacct(jid, n_rows=3)
    assert states == {f"{jid}_{i}": "COMPLETED" for i in range(3)}, states
    for i in range(3):
        assert (tmp_path / f"done_{i}").read_text().strip() == str(i)


# --------------------------------------------------------------- submitit --
def _job_env() -> dict:
    keys = ["CUDA_VISIBLE_DEVICES", "SLURM_JOB_PARTITION", "SLURM_JOB_ID", "SLURM_RESTART_COUNT",
            "SUBMITIT_EXECUTOR"]
    return {"host": socket.gethostname(), **{k: os.environ.get(k) for k in keys}}


def _result(job, timeout: float = JOB_TIMEOUT_S):
    """``job.result()`` with a deadline; on timeout cancel and show why."""
    deadline = time.monotonic() + timeout
    while not job.done():
        if time.monotonic() > deadline:
            job.cancel(check=False)
            pytest.fail(f"submitit job {job.job_id} not done after {timeout}s, state={job.state}, "
                        f"stderr tail: {(job.stderr() or '')[-1500:]}")
        time.sleep(1)
    return job.result()


def test_submitit_gpu_job_returns_result(tmp_path):
    ex = submitit.AutoExecutor(folder=tmp_path / "%j")
    assert ex.cluster == "slurm"
    ex.update_parameters(slurm_partition="gpu", gpus_per_node=1, cpus_per_task=1, mem_gb=1,
                         timeout_min=5, name="mtl-submitit")
    job = ex.submit(_job_env)
    env = _result(job)
    assert env["SUBMITIT_EXECUTOR"] == "slurm"
    assert env["SLURM_JOB_PARTITION"] == "gpu"
    assert env["CUDA_VISIBLE_DEVICES"] in {"0", "1"}, env
    assert _wait_sacct(str(job.job_id)) == {str(job.job_id): "COMPLETED"}


class SleepUntilRequeued(submitit.helpers.Checkpointable):
    """First run sleeps past its time limit; after the requeue it returns at once."""

    def __call__(self) -> dict:
        env = _job_env()
        if int(env["SLURM_RESTART_COUNT"] or 0) == 0:
            time.sleep(600)  # interrupted by USR2 -> checkpoint -> scontrol requeue
        return env


def test_submitit_checkpointable_is_requeued_at_time_limit(tmp_path):
    """A 1-minute job gets USR2 before its limit, is requeued and then finishes.

    Slurm sends the signal when less than ``signal_delay_s`` + 30 s remain (it
    checks limits every 30 s), so 20 s means 10-40 s after start: late enough
    for submitit to have installed its handler, and well before the kill.
    """
    ex = submitit.AutoExecutor(folder=tmp_path / "%j")
    ex.update_parameters(slurm_partition="gpu", gpus_per_node=1, cpus_per_task=1, mem_gb=1,
                         timeout_min=1, slurm_signal_delay_s=20, name="mtl-requeue")
    t0 = time.monotonic()
    job = ex.submit(SleepUntilRequeued())
    env = _result(job, timeout=240)
    took = time.monotonic() - t0
    assert int(env["SLURM_RESTART_COUNT"]) >= 1, env
    assert env["SLURM_JOB_ID"] == str(job.job_id)  # the same job, requeued
    assert _wait_sacct(str(job.job_id)) == {str(job.job_id): "COMPLETED"}
    print(f"requeue round trip took {took:.0f}s")

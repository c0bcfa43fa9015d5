"""Helpers of the tests that run against the REAL local Slurm (scripts/slurm_local.sh start).

Without a reachable controller those tests skip loudly; with MTL_REQUIRE_SLURM=1 (CI) they fail.
"""
from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import Any, Callable

import conftest
import pytest

from mtl_cluster.launch.study import load_experiments
from mtl_cluster.launch.grid import RunSpec, expand
from mtl_cluster.rundir import RunDir, read_jsonl

REPO = Path(__file__).resolve().parents[1]


def skip_or_fail(reason: str) -> None:
    conftest.skip_or_fail(f"SLURM TESTS NOT RUN: {reason}; start it with 'scripts/slurm_local.sh start'",
                          "MTL_REQUIRE_SLURM")


def require_cluster() -> None:
    """Skip (or fail in CI) unless sinfo answers and the gpu partition exists."""
    if shutil.which("sinfo") is None or shutil.which("sbatch") is None:
        skip_or_fail("sinfo/sbatch are not installed")
    try:
        res = subprocess.run(["sinfo", "-h", "-o", "%R"], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        skip_or_fail("sinfo timed out")
    if res.returncode != 0 or "gpu" not in res.stdout.split():
        skip_or_fail(f"sinfo cannot reach slurmctld or there is no gpu partition ({res.stderr.strip()[-200:]})")


def dirs(tmp: Path) -> list[str]:
    return ["--results", str(tmp / "results"), "--jobs-dir", str(tmp / "jobs"), "--logs-dir", str(tmp / "logs")]


def specs(yaml_file: Path, tmp: Path, *, debug: bool = False, only=None, sets=()) -> list[RunSpec]:
    return expand(load_experiments(yaml_file), tmp / "results", debug=debug, only=only, overrides=list(sets))


def wait(pred: Callable[[], Any], timeout: float, what: str, poll: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(poll)
    q = subprocess.run(["squeue", "-o", "%i %P %T %r %M"], capture_output=True, text=True, timeout=10).stdout
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}; squeue:\n{q}")


def state(run_dir: Path) -> str | None:
    return RunDir(run_dir).read_status().get("state")


def all_completed(runs: list[RunSpec]) -> bool:
    return all(state(s.run_dir) == "completed" for s in runs)


def sacct(job: str, fields: str = "JobID,State,Start,End") -> dict[str, list[str]]:
    res = subprocess.run(["sacct", "-X", "-n", "-P", "-j", job, "-o", fields], capture_output=True, text=True,
                         timeout=15)
    return {line.split("|")[0]: line.split("|")[1:] for line in res.stdout.splitlines() if "|" in line}


def epochs(run_dir: Path) -> list[tuple[int, str]]:
    return [(r["epoch"], r["split"]) for r in read_jsonl(RunDir(run_dir).metrics_file)]

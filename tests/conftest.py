"""Shared test helpers: tiny configs and a subprocess runner for the real CLI."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# A run small enough for seconds on 2 CPU cores, big enough to have several steps and epochs.
TINY = ["image_size=64", "batch_size=8", "epoch=3", "steps_per_epoch=6",
        "data.synthetic_train_size=64", "data.synthetic_eval_size=24"]


def sets(*pairs: str) -> list[str]:
    """``--set`` arguments for the CLI from ``key=value`` strings."""
    out: list[str] = []
    for p in pairs:
        out += ["--set", p]
    return out


def train_cmd(run_dir: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "mtl_cluster.train", "--run-dir", str(run_dir), *extra]


def run_cli(cmd: list[str], timeout: float = 300, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    return subprocess.run(cmd, cwd=kw.pop("cwd", REPO), env=env, capture_output=True, text=True,
                          timeout=timeout, **kw)


@pytest.fixture
def tiny_sets() -> list[str]:
    return sets(*TINY)


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    """The fault matrix (tests/test_faults.py), when those tests ran."""
    import faultmatrix

    if faultmatrix.ROWS:
        terminalreporter.section("fault matrix (RELIABILITY.md)")
        terminalreporter.write(faultmatrix.render(faultmatrix.ROWS))
        faultmatrix.write_json()

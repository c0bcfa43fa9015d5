"""scripts/demo.sh, the README's main command, as a user runs it: its extra arguments reach mtl-launch, and a
``--results`` folder is the one the table is collected from (the longer demo of BENCHMARKS.md writes its own
folder beside the default demo's ``results/``). Tiny runs: one row, two seeds, 2 steps each."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("form", ["--results DIR", "--results=DIR"])
def test_demo_script_collects_the_folder_it_launched_into(tmp_path: Path, form: str) -> None:
    results = tmp_path / "my results"
    flag = ["--results", str(results)] if form == "--results DIR" else [f"--results={results}"]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "COLUMNS": "400"}
    proc = subprocess.run(["bash", str(REPO / "scripts" / "demo.sh"), *flag, "--jobs-dir", str(tmp_path / "jobs"),
                           "--logs-dir", str(tmp_path / "logs"), "--only", "AlexNet-Gender", "--set", "epoch=1",
                           "--set", "steps_per_epoch=2"], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len(list(results.rglob("summary.json"))) == 2, proc.stdout[-2000:]       # seeds 0 and 1
    assert "2 run folders found, 2 in the table" in proc.stdout, proc.stdout[-2000:]   # the table of that folder
    assert str(results) in proc.stdout

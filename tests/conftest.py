"""Shared test helpers: tiny configs and a subprocess runner for the real CLI."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

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


def wait_for(predicate, timeout: float, what: str) -> None:
    """Poll ``predicate`` every 20 ms until it holds; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def attempt_starts(run: Path) -> list[dict]:
    """The ``start`` lines of a run folder's attempts.jsonl."""
    from mtl_cluster.rundir import RunDir, read_jsonl
    return [a for a in read_jsonl(RunDir(run).attempts_file) if a["event"] == "start"]


def killed_after_start(run: Path, args: list[str], env: dict[str, str]) -> None:
    """A real ``mtl-train`` attempt that begins (its start line is written) and is SIGKILLed before its first
    checkpoint: what a preemption past its grace time, an OOM kill or a dying node leave behind."""
    before = len(attempt_starts(run))
    proc = subprocess.Popen(train_cmd(run, *args), cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: len(attempt_starts(run)) > before, 120, "the attempt's start line")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not list((run / "checkpoints").glob("*.pt")), "the attempt checkpointed before the kill"


def run_cli(cmd: list[str], timeout: float = 300, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    return subprocess.run(cmd, cwd=kw.pop("cwd", REPO), env=env, capture_output=True, text=True,
                          timeout=timeout, **kw)


def skip_or_fail(message: str, require: str) -> None:
    """Skip loudly (a warning in the summary) when a real part the test needs is missing; fail instead when the
    environment variable ``require`` is set (CI sets it after installing that part)."""
    if os.environ.get(require, "") not in ("", "0"):
        pytest.fail(message, pytrace=False)
    warnings.warn(message, pytest.PytestWarning, stacklevel=3)
    pytest.skip(message)


@pytest.fixture
def tiny_sets() -> list[str]:
    return sets(*TINY)


# -- the bad input corpus: tallies shown at the end of the session ------------------------------------
class CorpusTally:
    """Cases of the bad input corpus by category: how many were tried and how many ended as expected.

    ``case(category)`` wraps one case: it counts as tried on entry and as expected only if the body
    returns; an assertion inside fails the test as usual (and the case stays counted as not expected).
    """

    def __init__(self) -> None:
        self.tried: dict[str, int] = {}
        self.ok: dict[str, int] = {}

    @contextmanager
    def case(self, category: str) -> Iterator[None]:
        self.tried[category] = self.tried.get(category, 0) + 1
        yield
        self.ok[category] = self.ok.get(category, 0) + 1

    def lines(self) -> list[str]:
        tried, ok = sum(self.tried.values()), sum(self.ok.values())
        by = ", ".join(f"{c} {self.ok.get(c, 0)}/{n}" for c, n in sorted(self.tried.items()))
        return [f"bad-input corpus: {tried} cases tried, {ok} ended as expected", f"  by category: {by}"]


CORPUS = CorpusTally()
KNOWN_ANSWER: list[str] = []   # tests/test_known_answer.py's verdicts, printed at the end of the session
DEMO: list[str] = []           # tests/test_learning.py's demo figures, printed at the end of the session
CHAOS: list[str] = []          # tests/test_chaos.py's tally, printed at the end of the session


@pytest.fixture(scope="session")
def corpus() -> CorpusTally:
    return CORPUS


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    """The bad-input corpus tallies and the fault matrix (tests/test_faults.py), when those tests ran."""
    import faultmatrix

    if CORPUS.tried:
        for line in CORPUS.lines():
            terminalreporter.write_line(line)
    if KNOWN_ANSWER:
        terminalreporter.section("known-answer study (STUDIES.md)")
        for line in KNOWN_ANSWER:
            terminalreporter.write_line(line)
    if DEMO:
        terminalreporter.section("the demo (BENCHMARKS.md)")
        for line in DEMO:
            terminalreporter.write_line(line)
    if CHAOS:
        terminalreporter.section("chaos soak (RELIABILITY.md)")
        for line in CHAOS:
            terminalreporter.write_line(line)
    if faultmatrix.ROWS:
        terminalreporter.section("fault matrix (RELIABILITY.md)")
        terminalreporter.write(faultmatrix.render(faultmatrix.ROWS))
        faultmatrix.write_json()

"""Helpers of the bad input corpus: call a CLI in-process and check that it ended as expected.

"As expected" for input a tool rejects: exit code 2 (bad input), stderr exactly one non-empty line
``mtl-<tool>: error: ...``, no "Traceback" anywhere, and nothing half-written (no temp files, every JSON
file parses). Hypothesis settings are shared so the corpus is deterministic in CI.
"""
from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from hypothesis import HealthCheck, settings

# Deterministic (derandomize), no per-example deadline (the first call imports pandas/torch), a size
# that keeps each fuzzing test to seconds on 2 cores.
FUZZ = settings(derandomize=True, deadline=None, max_examples=200, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def line(self) -> str:
        return self.err.strip("\n")


def call(main: Callable[[Sequence[str]], int], argv: Sequence[str]) -> Result:
    """Run a CLI's ``main(argv)`` in-process with stdout/stderr captured (argparse's exit included)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return Result(code, out.getvalue(), err.getvalue())


def assert_one_line_error(res: Result, tool: str, *needles: str, code: int = 2) -> str:
    """The rejection contract: ``code``, one ``mtl-<tool>: error: ...`` line, no traceback; returns the line."""
    assert "Traceback" not in res.out + res.err, res.err
    assert res.code == code, f"exit {res.code}, expected {code}; stderr: {res.err!r}"
    lines = res.err.splitlines()
    assert len(lines) == 1 and lines[0].strip() and res.err.endswith("\n"), f"not one line: {res.err!r}"
    assert lines[0].startswith(f"mtl-{tool}: error: "), lines[0]
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"
    return lines[0]


def assert_no_traceback(res: Result) -> None:
    assert "Traceback" not in res.out + res.err, res.err
    assert "internal error" not in res.err, res.err


def assert_nothing_half_written(root: Path) -> None:
    """No temp file left anywhere under ``root``, and every JSON file there parses."""
    for p in Path(root).rglob("*"):
        assert not p.name.endswith(".tmp"), f"temp file left: {p}"
        assert not (p.name.startswith("mtl-run-") and p.suffix == ".yaml"), f"job config left: {p}"
        if p.is_file() and p.suffix == ".json":
            json.loads(p.read_text(encoding="utf-8"))
        if p.is_file() and p.name.endswith(".jsonl"):
            for line in p.read_text(encoding="utf-8").splitlines():
                json.loads(line)


def assert_inside(path: Path, root: Path) -> None:
    """``path`` (resolved, links followed) lies strictly under ``root``."""
    resolved, base = Path(path).resolve(), Path(root).resolve()
    assert resolved != base and base in resolved.parents, f"{path} escapes {root}"


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` with its bytes (to prove a reader wrote nothing)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(Path(root).rglob("*")) if p.is_file()}

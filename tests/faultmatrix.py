"""The fault matrix: one row per injected fault, filled by tests/test_faults.py, printed at the end of the
test session and written as JSON for scripts/fault_matrix.sh (which renders RELIABILITY.md).

"Epochs lost" is the training that had to be done twice: the position the run had reached when the fault
hit (the newest of status.json's progress, written every few seconds, and the newest checkpoint, read just
before the injection) minus the position it resumed from (log.txt's "resumed from ckpt-e..-s.." line).
For a kill it is therefore a lower bound by at most the progress interval; for a signal the trainer
saves at the next step boundary and nothing is lost.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from mtl_cluster.rundir import RunDir

ROWS: list["Row"] = []
_CKPT = re.compile(r"ckpt-e(\d+)-s(\d+)\.pt")


@dataclass
class Row:
    """One fault and what became of the run."""

    n: int
    fault: str
    injected: str
    outcome: str = "test failed before the outcome was known (see the failure above)"
    epochs_lost: str = "-"
    identical: str = "-"


def record(row: Row) -> Row:
    ROWS.append(row)
    return row


def position(run_dir: Path, steps: int) -> int:
    """Steps trained so far (global), as far as the run folder shows right now."""
    rd = RunDir(run_dir)
    st = rd.read_status()
    best = int(st.get("epoch") or 0) * steps + int(st.get("step") or 0)
    for p in rd.checkpoints.glob("ckpt-*.pt") if rd.checkpoints.is_dir() else []:
        m = _CKPT.fullmatch(p.name)
        if m:
            best = max(best, int(m[1]) * steps + int(m[2]))
    return best


def resumed_from(run_dir: Path, steps: int) -> list[int]:
    """Global step of every resume in log.txt, in order."""
    text = RunDir(run_dir).log_file.read_text(encoding="utf-8", errors="replace")
    return [int(m[1]) * steps + int(m[2]) for m in re.finditer(r"resumed from ckpt-e(\d+)-s(\d+)\.pt", text)]


def epochs_lost(reached: int, resumed: int, steps: int) -> str:
    return f"{max(0, reached - resumed) / steps:.2f}"


def position_from_reason(reason: str, steps: int) -> int:
    """Global step named by a failure reason ("... at epoch E step S ...")."""
    m = re.search(r"at epoch (\d+) step (\d+)", reason)
    return (int(m[1]) - 1) * steps + int(m[2]) if m else 0


def saved_on_signal(run_dir: Path, steps: int) -> list[int]:
    """Global step of every checkpoint the trainer wrote on a stop signal (log.txt), in order."""
    text = RunDir(run_dir).log_file.read_text(encoding="utf-8", errors="replace")
    out = []
    for m in re.finditer(r"checkpointed at (?:epoch (\d+) step (\d+)/|the end of epoch (\d+))", text):
        out.append((int(m[1]) - 1) * steps + int(m[2]) if m[1] else int(m[3]) * steps)
    return out


def lost_after_signals(run_dir: Path, steps: int) -> str:
    """Epochs lost over all signal-driven restarts: each resume against the save before it."""
    pairs = zip(saved_on_signal(run_dir, steps), resumed_from(run_dir, steps))
    return f"{sum(max(0, saved - resumed) for saved, resumed in pairs) / steps:.2f}"


def identical(run_dir: Path, ref_dir: Path) -> bool:
    """metrics.jsonl and summary.json byte for byte as in the uninterrupted reference run."""
    return all((run_dir / f).read_bytes() == (ref_dir / f).read_bytes() for f in ("metrics.jsonl", "summary.json"))


def render(rows: list[Row]) -> str:
    """The matrix as a markdown table (what RELIABILITY.md keeps)."""
    head = "| # | fault | injected by | outcome | epochs lost | identical metrics |\n|---|---|---|---|---|---|\n"
    return head + "".join(f"| {r.n} | {r.fault} | {r.injected} | {r.outcome} | {r.epochs_lost} | {r.identical} |\n"
                          for r in sorted(rows, key=lambda r: r.n))


def write_json() -> None:
    """Save the rows where scripts/fault_matrix.sh asked (MTL_FAULT_MATRIX), if it did."""
    out = os.environ.get("MTL_FAULT_MATRIX")
    if out and ROWS:
        Path(out).write_text(json.dumps([asdict(r) for r in sorted(ROWS, key=lambda r: r.n)], indent=2) + "\n")

"""Throttle a running study: how many tasks of each of its job arrays may run at once, changed while it runs
(``mtl-launch ... --throttle N``: ``scontrol update JobId=<array> ArrayTaskThrottle=N``), for a cluster that
gets busy or quiet. Each change is written into the jobs/ record of the launch that queued the array
(``throttles``: when, N, which arrays; each array's ``throttle``), where mtl-status reads it. Never prints.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

from ..fsio import atomic_write_json
from .ledger import JobRef, read_records
from .slurmq import LIVE, run_command


@dataclass
class Throttled:
    """What ``throttle`` did: the arrays changed, those scontrol refused (id -> its line), the records written."""

    arrays: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    records: list[str] = field(default_factory=list)


def live_arrays(jobs: Mapping[str, JobRef], ids: Mapping[str, str], states: Mapping[str, str],
                pending: bool = False) -> dict[str, str]:
    """array job id -> the jobs/ record that queued it, for the grid's job arrays with a task still queued or
    running (``pending``: still queued; only those can be throttled: scontrol refuses an array whose tasks
    all run) (``ids``: run folder -> job id, ledger.job_ids; ``states``: slurmq.slurm_states)."""
    out: dict[str, str] = {}
    for run_dir, job in sorted(ids.items(), key=lambda kv: kv[1]):
        if "_" in job and (states.get(job) == "PENDING" if pending else states.get(job) in LIVE):
            out.setdefault(job.split("_")[0], jobs[run_dir].record)
    return out


def throttle(arrays: Mapping[str, str], n: int, timeout: float = 30.0) -> Throttled:
    """``scontrol update JobId=<array> ArrayTaskThrottle=n`` on each array (0: no limit), then record it in
    the array's jobs/ record. The caller holds the launch lock."""
    done = Throttled()
    for array in sorted(arrays, key=lambda a: (len(a), a)):
        res = run_command(["scontrol", "update", f"JobId={array}", f"ArrayTaskThrottle={n}"], timeout)
        if res is None:
            done.failed[array] = "scontrol is missing or timed out"
        elif res.returncode != 0:
            done.failed[array] = (res.stderr.strip().splitlines() or [f"exit {res.returncode}"])[-1]
        else:
            done.arrays.append(array)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    for path in sorted({arrays[a] for a in done.arrays}):
        _record(Path(path), [a for a in done.arrays if arrays[a] == path], n, stamp)
        done.records.append(path)
    return done


def _record(path: Path, arrays: list[str], n: int, stamp: str) -> None:
    rec = json.loads(path.read_text(encoding="utf-8"))
    rec.setdefault("throttles", []).append({"time": stamp, "throttle": n, "arrays": arrays})
    for entry in rec.get("arrays") or []:
        if isinstance(entry, dict) and str(entry.get("job_id")) in arrays:
            entry["throttle"] = n
    atomic_write_json(path, rec)


@dataclass(frozen=True)
class Throttle:
    array: str
    throttle: int         # tasks at once (0: no limit)
    time: str             # when mtl-launch --throttle set it


def recorded(jobs_dir: Path, arrays: Iterable[str]) -> dict[str, Throttle]:
    """array job id -> its last throttle from the jobs/ records, for these arrays."""
    wanted = set(arrays)
    out: dict[str, Throttle] = {}
    for rec in read_records(jobs_dir):
        throttles = rec.get("throttles")
        for t in throttles if isinstance(throttles, list) else []:
            if not isinstance(t, dict) or not isinstance(t.get("throttle"), int):
                continue
            for a in t.get("arrays") or []:
                if str(a) in wanted:
                    out[str(a)] = Throttle(str(a), t["throttle"], str(t.get("time", "")))
    return out


def parallelism(jobs_dir: Path) -> dict[str, int]:
    """array job id -> how many of its tasks may run at once: the last throttle if any, else what the launch
    asked (``parallelism`` of the record's array), for the arrays the records know."""
    out: dict[str, int] = {}
    for rec in read_records(jobs_dir):
        arrays = rec.get("arrays")
        for entry in arrays if isinstance(arrays, list) else []:
            if isinstance(entry, dict) and entry.get("job_id"):
                value = entry.get("throttle", entry.get("parallelism"))
                if isinstance(value, int) and value > 0:
                    out[str(entry["job_id"])] = value
    return out

"""Slurm's own account of what a run's jobs used: elapsed time x allocated GPUs, from sacct.

Why a module of its own: ``mtl-collect --cost`` needs it and nothing else of the launch side (the CLI hands
``gpu_seconds`` to ``cost.add_cost``, which imports no Slurm code). A cluster bills what a job *held*, which the
run's own records (attempts.jsonl: the GPUs torch saw) can understate; this is the figure to set beside
them where accounting answers. Every query is bounded; no sacct, a failing one or a job it does not know
give no figure, never a guess. Reads, never writes, never prints.
"""
from __future__ import annotations

import re
from typing import Iterable

from .slurmq import run_command

QUERY_TIMEOUT_S = 20.0
_GPUS = re.compile(r"gres/gpu(?::[^=,]+)?=(\d+)")


def gpus_of(alloc_tres: str) -> int:
    """GPUs in sacct's AllocTRES (``cpu=1,gres/gpu=2,mem=2G,node=1``; a typed ``gres/gpu:a100=2`` counts
    too, but only the untyped total when both are listed)."""
    untyped = re.search(r"gres/gpu=(\d+)", alloc_tres)
    if untyped:
        return int(untyped.group(1))
    return sum(int(n) for n in _GPUS.findall(alloc_tres))


def parse(text: str) -> dict[str, float]:
    """``sacct -X -D -n -P -o JobID,ElapsedRaw,AllocTRES`` lines -> job id -> GPU-seconds, every requeued
    instance of a job (``-D``) summed."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        parts = line.split("|")
        if len(parts) != 3 or not parts[1].strip().isdigit():
            continue
        jid = parts[0].strip()
        out[jid] = out.get(jid, 0.0) + int(parts[1]) * gpus_of(parts[2])
    return out


def gpu_seconds(job_ids: Iterable[str], timeout: float = QUERY_TIMEOUT_S) -> dict[str, float] | None:
    """job id (``123`` or an array task ``123_4``) -> GPU-seconds Slurm accounted for it; a job sacct does not
    know is left out. None when sacct is missing, times out or fails."""
    ids = sorted({str(j) for j in job_ids if j})
    if not ids:
        return {}
    res = run_command(["sacct", "-X", "-D", "-n", "-P", "-j", ",".join(ids), "-o", "JobID,ElapsedRaw,AllocTRES"],
                      timeout)
    if res is None or res.returncode != 0:
        return None
    found = parse(res.stdout)
    return {j: found[j] for j in ids if j in found}

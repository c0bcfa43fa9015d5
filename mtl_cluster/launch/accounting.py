"""Slurm's own account of what a run's jobs used, from sacct: GPU-seconds (elapsed x allocated GPUs), the most
resident memory a step held (MaxRSS) and the CPU time the job's processes used (TotalCPU).

Why a module of its own: ``mtl-collect --cost`` needs it and nothing else of the launch side (the CLI hands
``usage`` to ``cost.add_cost``, which imports no Slurm code). A cluster bills what a job *held*, which the
run's own records (attempts.jsonl: the GPUs torch saw) can understate, and sacct measures the whole job (the
submitit wrapper, every DataLoader worker) where the run's records measure the trainer: these are the figures to
set beside them where accounting answers. Every query is bounded; no sacct, a failing one or a job it does not
know give no figure, never a guess. Reads, never writes, never prints.
"""
from __future__ import annotations

import re
from typing import Iterable

from .slurmq import run_command

QUERY_TIMEOUT_S = 20.0
FIELDS = "JobID,ElapsedRaw,AllocTRES,AllocCPUS,TotalCPU,MaxRSS"
_GPUS = re.compile(r"gres/gpu(?::[^=,]+)?=(\d+)")
_UNITS = {"": 1 / 1024, "K": 1 / 1024, "M": 1.0, "G": 1024.0, "T": 1024.0 ** 2}   # sacct's MaxRSS, to MiB
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)([KMGT]?)$")


def gpus_of(alloc_tres: str) -> int:
    """GPUs in sacct's AllocTRES (``cpu=1,gres/gpu=2,mem=2G,node=1``; a typed ``gres/gpu:a100=2`` counts
    too, but only the untyped total when both are listed)."""
    untyped = re.search(r"gres/gpu=(\d+)", alloc_tres)
    if untyped:
        return int(untyped.group(1))
    return sum(int(n) for n in _GPUS.findall(alloc_tres))


def mib_of(size: str) -> float | None:
    """sacct's MaxRSS (``1194748K``, ``2.5G``; a bare number is taken as KiB, sacct's unit) in MiB; None if empty."""
    m = _SIZE.match(size.strip())
    return float(m.group(1)) * _UNITS[m.group(2)] if m else None


def seconds_of(cpu_time: str) -> float | None:
    """sacct's TotalCPU (``[D-][HH:]MM:SS[.mmm]``) in seconds; None if it is not one."""
    text = cpu_time.strip()
    days, _, clock = text.rpartition("-")
    try:
        parts = [float(x) for x in clock.split(":")]
        whole = int(days) if days else 0
    except ValueError:
        return None
    if not 2 <= len(parts) <= 3:
        return None
    h, m, s = parts if len(parts) == 3 else (0.0, *parts)
    return whole * 86400 + h * 3600 + m * 60 + s


def parse(text: str) -> dict[str, dict[str, float]]:
    """``sacct -D -n -P -o FIELDS`` lines -> job id -> ``gpu_s`` (elapsed x GPUs), ``cpu_s`` (TotalCPU),
    ``cpu_held_s`` (elapsed x CPUs) summed over every requeued instance of the job (``-D``), and ``max_rss_mib``,
    the highest MaxRSS of its steps (``123.batch``, ``123.0``: sacct keeps memory per step) where one has it."""
    out: dict[str, dict[str, float]] = {}
    for line in text.splitlines():
        parts = line.split("|")
        if len(parts) != 6:
            continue
        jid, step = (parts[0].strip().split(".", 1) + [""])[:2]
        if step:
            rss = mib_of(parts[5])
            if rss is not None and jid in out:
                out[jid]["max_rss_mib"] = max(out[jid].get("max_rss_mib", 0.0), rss)
            continue
        if not parts[1].strip().isdigit():
            continue
        elapsed, cpus, cpu = int(parts[1]), parts[3].strip(), seconds_of(parts[4])
        job = out.setdefault(jid, {"gpu_s": 0.0, "cpu_s": 0.0, "cpu_held_s": 0.0})
        job["gpu_s"] += elapsed * gpus_of(parts[2])
        job["cpu_s"] += cpu or 0.0
        job["cpu_held_s"] += elapsed * int(cpus) if cpus.isdigit() else 0
    return out


def usage(job_ids: Iterable[str], timeout: float = QUERY_TIMEOUT_S) -> dict[str, dict[str, float]] | None:
    """job id (``123`` or an array task ``123_4``) -> what Slurm accounted for it (``parse``); a job sacct
    does not know is left out. None when sacct is missing, times out or fails."""
    ids = sorted({str(j) for j in job_ids if j})
    if not ids:
        return {}
    res = run_command(["sacct", "-D", "-n", "-P", "-j", ",".join(ids), "-o", FIELDS], timeout)
    if res is None or res.returncode != 0:
        return None
    found = parse(res.stdout)
    return {j: found[j] for j in ids if j in found}


def gpu_seconds(job_ids: Iterable[str], timeout: float = QUERY_TIMEOUT_S) -> dict[str, float] | None:
    """job id -> GPU-seconds Slurm accounted for it (``usage``'s ``gpu_s``); None when sacct does not answer."""
    found = usage(job_ids, timeout)
    return None if found is None else {j: u["gpu_s"] for j, u in found.items()}

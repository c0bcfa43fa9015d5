"""What Slurm says now: job states (squeue, then sacct), whether the controller answers, partitions, scancel.

Every scheduler query is a subprocess with a timeout: a missing ``sacct``, a slow controller or no Slurm
at all degrade to the state ``UNKNOWN``; nothing here blocks or raises for that.
"""
from __future__ import annotations

import getpass
import os
import shutil
import subprocess
from typing import Iterable

QUERY_TIMEOUT_S = 10.0
LIVE = frozenset({"PENDING", "RUNNING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "CONFIGURING",
                  "COMPLETING", "SUSPENDED", "RESIZING", "STAGE_OUT", "SIGNALING"})
UNKNOWN = "UNKNOWN"
GONE = "GONE"        # not in squeue any more, and sacct (if any) does not know it


def run_command(cmd: list[str], timeout: float = QUERY_TIMEOUT_S) -> subprocess.CompletedProcess | None:
    """Run a scheduler (or git) command; None when it is missing, times out or fails to start."""
    if shutil.which(cmd[0]) is None:
        return None
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except (subprocess.TimeoutExpired, OSError):
        return None


def _parse(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        if "|" in line:
            jid, state = line.split("|", 1)
            out[jid.strip()] = (state.split() or [UNKNOWN])[0].rstrip("+")
    return out


def slurm_states(job_ids: Iterable[str], timeout: float = QUERY_TIMEOUT_S) -> dict[str, str]:
    """job id -> Slurm state: squeue for live jobs, then sacct for the rest (if there is one).

    ``UNKNOWN`` when squeue cannot be asked; ``GONE`` when squeue answered without the job and sacct
    is missing or does not know it either.
    """
    ids = sorted({str(j) for j in job_ids if j})
    if not ids:
        return {}
    user = os.environ.get("USER") or getpass.getuser()
    res = run_command(["squeue", "-h", "-r", "-u", user, "-o", "%i|%T"], timeout)
    if res is None or res.returncode != 0:
        return {j: UNKNOWN for j in ids}
    queued = _parse(res.stdout)
    out = {j: queued[j] for j in ids if j in queued}
    rest = [j for j in ids if j not in out]
    if rest:
        acct = run_command(["sacct", "-X", "-n", "-P", "-j", ",".join(rest), "-o", "JobID,State"], timeout)
        known = _parse(acct.stdout) if acct is not None and acct.returncode == 0 else {}
        for j in rest:
            out[j] = known.get(j, GONE)
    return out


def reachable(timeout: float = QUERY_TIMEOUT_S) -> str | None:
    """None when sbatch exists and the controller answers; else why not (one line)."""
    if shutil.which("sbatch") is None:
        return "sbatch is not on PATH (not a Slurm login node?)"
    res = run_command(["squeue", "-h", "-u", os.environ.get("USER") or getpass.getuser(), "-o", "%i"], timeout)
    if res is None:
        return f"squeue did not answer within {timeout:.0f}s"
    if res.returncode != 0:
        return f"squeue failed: {res.stderr.strip().splitlines()[-1] if res.stderr.strip() else res.returncode}"
    return None


def partition_exists(name: str, timeout: float = QUERY_TIMEOUT_S) -> bool | None:
    """True/False from sinfo; None when sinfo cannot tell."""
    res = run_command(["sinfo", "-h", "-o", "%R"], timeout)
    if res is None or res.returncode != 0:
        return None
    return name in {line.strip() for line in res.stdout.splitlines()}


def cancel(job_ids: Iterable[str], timeout: float = 30.0) -> str | None:
    """scancel the jobs; None on success, else the error line."""
    ids = sorted({str(j) for j in job_ids})
    if not ids:
        return None
    res = run_command(["scancel", *ids], timeout)
    if res is None:
        return "scancel is missing or timed out"
    return None if res.returncode == 0 else (res.stderr.strip() or f"scancel exit {res.returncode}")

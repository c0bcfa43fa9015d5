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
NEVER = "DEPENDENCY_NEVER_SATISFIED"
"""Pending on a dependency that can never be met (the job it follows failed or was cancelled): squeue still
lists it, but it will never start, so it is not LIVE; the next launch cancels it and submits the run again."""


def run_command(cmd: list[str], timeout: float = QUERY_TIMEOUT_S) -> subprocess.CompletedProcess | None:
    """Run a scheduler (or git) command; None when it is missing, times out or fails to start."""
    if shutil.which(cmd[0]) is None:
        return None
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except (subprocess.TimeoutExpired, OSError):
        return None


def _state(field: str) -> str:
    """A state column as one word: ``CANCELLED by 0`` -> ``CANCELLED``, ``RUNNING+`` -> ``RUNNING``."""
    return (field.split() or [UNKNOWN])[0].rstrip("+")


def _parse(text: str) -> dict[str, str]:
    """``id|state[|reason]`` lines (squeue ``%i|%T|%r``, sacct ``JobID,State``): job id -> state, ``NEVER`` for
    a job pending on a dependency that can never be satisfied."""
    out = {}
    for line in text.splitlines():
        parts = line.split("|")
        if len(parts) >= 2:
            state = _state(parts[1])
            never = state == "PENDING" and len(parts) > 2 and parts[2].strip() == "DependencyNeverSatisfied"
            out[parts[0].strip()] = NEVER if never else state
    return out


def slurm_states(job_ids: Iterable[str], timeout: float = QUERY_TIMEOUT_S) -> dict[str, str]:
    """job id -> Slurm state: squeue for live jobs, then sacct for the rest (if there is one).

    ``UNKNOWN`` when squeue cannot be asked; ``GONE`` when squeue answered without the job and sacct
    is missing, does not know it either, or still has this user's job live; ``NEVER`` for a queued job that
    can never start.

    squeue (asked for this user's jobs) is the controller's own view, so a job of this user that it does not
    list is not live, whatever sacct says: the accounting database learns of a job's end a moment later (seen
    on the local Slurm: a requeued job that ended was still RUNNING in sacct after squeue had dropped it, and
    mtl-status called its run running). Another user's job (a shared study folder) is sacct's to tell.
    """
    ids = sorted({str(j) for j in job_ids if j})
    if not ids:
        return {}
    user = os.environ.get("USER") or getpass.getuser()
    res = run_command(["squeue", "-h", "-r", "-u", user, "-o", "%i|%T|%r"], timeout)
    if res is None or res.returncode != 0:
        return {j: UNKNOWN for j in ids}
    queued = _parse(res.stdout)
    out = {j: queued[j] for j in ids if j in queued}
    rest = [j for j in ids if j not in out]
    if rest:
        acct = run_command(["sacct", "-X", "-n", "-P", "-j", ",".join(rest), "-o", "JobID,State,User"], timeout)
        lines = acct.stdout.splitlines() if acct is not None and acct.returncode == 0 else []
        known = {jid.strip(): (_state(state), owner.strip())
                 for jid, state, owner in (line.split("|")[:3] for line in lines if line.count("|") >= 2)}
        for j in rest:
            state, owner = known.get(j, (GONE, user))
            out[j] = GONE if state in LIVE and owner == user else state
    return out


def waiting(timeout: float = QUERY_TIMEOUT_S) -> dict[str, tuple[str, str]] | None:
    """job id -> (reason, expected start) for this user's pending jobs, each array task on its own
    (``squeue -r -t PENDING``; ``%S`` is the start ``squeue --start`` shows, ``N/A`` when Slurm has none).
    None when squeue cannot be asked."""
    user = os.environ.get("USER") or getpass.getuser()
    res = run_command(["squeue", "-h", "-r", "-u", user, "-t", "PENDING", "-o", "%i|%r|%S"], timeout)
    if res is None or res.returncode != 0:
        return None
    out = {}
    for line in res.stdout.splitlines():
        parts = line.split("|")
        if len(parts) == 3:
            out[parts[0].strip()] = (parts[1].strip(), parts[2].strip())
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


# -- by comment (mtl-launch's submission journal puts its token there) -----------------------------
HELD_REASONS = frozenset({"JobHeldUser", "JobHeldAdmin"})


def queued_by_comment(prefix: str, timeout: float = QUERY_TIMEOUT_S) -> dict[str, tuple[str, bool]] | None:
    """comment -> (job id, held) for this user's jobs in squeue whose comment starts with ``prefix``.

    An array counts once (its job id without the task); held when any of its tasks is held by a user.
    None when squeue cannot be asked: the caller must then not conclude that a job is absent.
    """
    user = os.environ.get("USER") or getpass.getuser()
    res = run_command(["squeue", "-h", "-u", user, "-o", "%F|%k|%r"], timeout)
    if res is None or res.returncode != 0:
        return None
    out: dict[str, tuple[str, bool]] = {}
    for line in res.stdout.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].startswith(prefix):
            jid, held = out.get(parts[1], (parts[0].strip(), False))
            out[parts[1]] = (jid, held or parts[2].strip() in HELD_REASONS)
    return out


def comments_accounted(timeout: float = QUERY_TIMEOUT_S) -> bool:
    """Whether sacct keeps job comments (slurm.conf ``AccountingStoreFlags=job_comment``)."""
    res = run_command(["scontrol", "show", "config"], timeout)
    if res is None or res.returncode != 0:
        return False
    return any(line.split("=")[0].strip() == "AccountingStoreFlags" and "job_comment" in line
               for line in res.stdout.splitlines())


def accounted_by_comment(prefix: str, since: str, timeout: float = QUERY_TIMEOUT_S) -> dict[str, str] | None:
    """comment -> job id for this user's jobs that sacct knows since ``since`` (``YYYY-MM-DDTHH:MM:SS``).

    None when sacct is missing, fails, or does not keep comments: then a job that already left squeue
    cannot be told from one that never reached Slurm.
    """
    if shutil.which("sacct") is None or not comments_accounted(timeout):
        return None
    user = os.environ.get("USER") or getpass.getuser()
    res = run_command(["sacct", "-X", "-n", "-P", "-u", user, "-S", since, "-E", "now", "-o", "JobID,Comment"],
                      timeout)
    if res is None or res.returncode != 0:
        return None
    out: dict[str, str] = {}
    for line in res.stdout.splitlines():
        jid, _, comment = line.partition("|")
        if comment.startswith(prefix):
            out.setdefault(comment, jid.split("_")[0].strip())
    return out


def release(job_ids: Iterable[str], timeout: float = 30.0) -> str | None:
    """scontrol release the (held) jobs; None on success, else the error line."""
    ids = sorted({str(j) for j in job_ids})
    if not ids:
        return None
    res = run_command(["scontrol", "release", ",".join(ids)], timeout)
    if res is None:
        return "scontrol is missing or timed out"
    return None if res.returncode == 0 else (res.stderr.strip() or f"scontrol release exit {res.returncode}")

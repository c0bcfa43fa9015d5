"""The launch ledger: one JSON record per launch in ``jobs/``, and what Slurm says about those jobs now.

Every scheduler query is a subprocess with a timeout: a missing ``sacct``, a slow controller or no Slurm
at all degrade to the state ``UNKNOWN``; nothing here blocks or raises for that.
"""
from __future__ import annotations

import fcntl
import getpass
import json
import os
import shutil
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

from .errors import ConfigError, MtlError
from .fsio import atomic_write_json

QUERY_TIMEOUT_S = 10.0
LIVE = frozenset({"PENDING", "RUNNING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "CONFIGURING",
                  "COMPLETING", "SUSPENDED", "RESIZING", "STAGE_OUT", "SIGNALING"})
UNKNOWN = "UNKNOWN"
GONE = "GONE"        # not in squeue any more, and sacct (if any) does not know it


def _run(cmd: list[str], timeout: float = QUERY_TIMEOUT_S) -> subprocess.CompletedProcess | None:
    """Run a scheduler command; None when it is missing, times out or fails to start."""
    if shutil.which(cmd[0]) is None:
        return None
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except (subprocess.TimeoutExpired, OSError):
        return None


# -- records ---------------------------------------------------------------------------------------
def write_record(jobs_dir: Path, record: dict[str, Any]) -> Path:
    """Save one launch record atomically as ``jobs/<time>-<cluster>-<pid>.json``."""
    jobs_dir = Path(jobs_dir)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = jobs_dir / f"{stamp}-{record.get('cluster', 'x')}-{os.getpid()}.json"
    atomic_write_json(path, record)
    return path


def read_records(jobs_dir: Path) -> list[dict[str, Any]]:
    """Every readable launch record, oldest first (a damaged file is skipped, not fatal)."""
    out = []
    for path in sorted(Path(jobs_dir).glob("*.json")):
        try:
            rec = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(rec, dict):
            rec["_file"] = str(path)
            out.append(rec)
    return out


@dataclass(frozen=True)
class JobRef:
    """The newest job a launch record gave one run folder."""

    job_id: str
    cluster: str
    log: str | None
    record: str


def latest_jobs(jobs_dir: Path) -> dict[str, JobRef]:
    """run folder (str) -> the job of its newest launch record."""
    out: dict[str, JobRef] = {}
    for rec in read_records(jobs_dir):
        runs = rec.get("runs")
        for run in runs if isinstance(runs, list) else []:   # a hand-edited record: skip what is not a run
            if isinstance(run, dict) and run.get("job_id") and isinstance(run.get("run_dir"), str):
                log = run.get("log")
                out[run["run_dir"]] = JobRef(str(run["job_id"]), str(rec.get("cluster", "")),
                                             log if isinstance(log, str) else None, rec["_file"])
    return out


@contextmanager
def launch_lock(jobs_dir: Path, wait_s: float = 60.0) -> Iterator[None]:
    """Exclusive lock on ``jobs/`` so two launches at once cannot submit the same run twice."""
    jobs_dir = Path(jobs_dir)
    try:
        jobs_dir.mkdir(parents=True, exist_ok=True)
        lock = open(jobs_dir / ".lock", "w")
    except OSError as exc:
        raise ConfigError(f"preflight: jobs folder {jobs_dir} is not writable ({exc.strerror}); "
                          f"fix it or give --jobs-dir") from None
    with lock as f:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise MtlError(f"another mtl-launch holds {jobs_dir}/.lock for over {wait_s:.0f}s") from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def git_commit(repo: Path) -> str | None:
    """The checked-out commit (with ``-dirty``), or None outside git."""
    res = _run(["git", "-C", str(repo), "rev-parse", "HEAD"], timeout=5)
    if res is None or res.returncode != 0:
        return None
    dirty = _run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"], timeout=5)
    return res.stdout.strip() + ("-dirty" if dirty is not None and dirty.stdout.strip() else "")


# -- Slurm -----------------------------------------------------------------------------------------
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
    res = _run(["squeue", "-h", "-r", "-u", user, "-o", "%i|%T"], timeout)
    if res is None or res.returncode != 0:
        return {j: UNKNOWN for j in ids}
    queued = _parse(res.stdout)
    out = {j: queued[j] for j in ids if j in queued}
    rest = [j for j in ids if j not in out]
    if rest:
        acct = _run(["sacct", "-X", "-n", "-P", "-j", ",".join(rest), "-o", "JobID,State"], timeout)
        known = _parse(acct.stdout) if acct is not None and acct.returncode == 0 else {}
        for j in rest:
            out[j] = known.get(j, GONE)
    return out


def reachable(timeout: float = QUERY_TIMEOUT_S) -> str | None:
    """None when sbatch exists and the controller answers; else why not (one line)."""
    if shutil.which("sbatch") is None:
        return "sbatch is not on PATH (not a Slurm login node?)"
    res = _run(["squeue", "-h", "-u", os.environ.get("USER") or getpass.getuser(), "-o", "%i"], timeout)
    if res is None:
        return f"squeue did not answer within {timeout:.0f}s"
    if res.returncode != 0:
        return f"squeue failed: {res.stderr.strip().splitlines()[-1] if res.stderr.strip() else res.returncode}"
    return None


def partition_exists(name: str, timeout: float = QUERY_TIMEOUT_S) -> bool | None:
    """True/False from sinfo; None when sinfo cannot tell."""
    res = _run(["sinfo", "-h", "-o", "%R"], timeout)
    if res is None or res.returncode != 0:
        return None
    return name in {line.strip() for line in res.stdout.splitlines()}


def cancel(job_ids: Iterable[str], timeout: float = 30.0) -> str | None:
    """scancel the jobs; None on success, else the error line."""
    ids = sorted({str(j) for j in job_ids})
    if not ids:
        return None
    res = _run(["scancel", *ids], timeout)
    if res is None:
        return "scancel is missing or timed out"
    return None if res.returncode == 0 else (res.stderr.strip() or f"scancel exit {res.returncode}")

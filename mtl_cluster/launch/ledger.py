"""The launch ledger: one JSON record per launch in ``jobs/``, the newest job of each run, the launch lock.

What Slurm says about those jobs now is ``slurmq``'s.
"""
from __future__ import annotations

import fcntl
import itertools
import json
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Mapping

from ..errors import ConfigError, MtlError
from ..fsio import atomic_write_json
from .slurmq import run_command

# -- records ---------------------------------------------------------------------------------------
_SEQ = itertools.count()   # this process's records, in the order written


def write_record(jobs_dir: Path, record: Mapping[str, object], suffix: str = "") -> Path:
    """Save one launch record atomically as ``jobs/<time>-<cluster>-<pid>-<n><suffix>.json``, never over another.

    ``n`` numbers this process's records: one launch can write several in one second (the interrupted
    launch's jobs it adopts at its start, its own, those it adopts after its own sbatch failed), and each
    must stay, in the order written (``read_records`` sorts by name; the newest record of a run wins).
    """
    jobs_dir = Path(jobs_dir)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    while True:
        path = jobs_dir / f"{stamp}-{record.get('cluster', 'x')}-{os.getpid()}-{next(_SEQ):04d}{suffix}.json"
        if not path.exists():       # another process has another pid: only a record of this one can be here
            atomic_write_json(path, record)
            return path


def read_records(jobs_dir: Path) -> list[dict[str, object]]:
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


def job_ids(jobs: dict[str, JobRef], run_dirs: Iterable[Path]) -> dict[str, str]:
    """run folder -> the id of its newest job, for the runs that have one (the one lookup plan, status and
    --cancel share)."""
    return {str(d): jobs[str(d)].job_id for d in run_dirs if str(d) in jobs}


def latest_jobs(jobs_dir: Path) -> dict[str, JobRef]:
    """run folder (str) -> the job of its newest launch record."""
    out: dict[str, JobRef] = {}
    for rec in read_records(jobs_dir):
        runs = rec.get("runs")
        for run in runs if isinstance(runs, list) else []:   # a hand-edited record: skip what is not a run
            if isinstance(run, dict) and run.get("job_id") and isinstance(run.get("run_dir"), str):
                log = run.get("log")
                out[run["run_dir"]] = JobRef(str(run["job_id"]), str(rec.get("cluster", "")),
                                             log if isinstance(log, str) else None, str(rec["_file"]))
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


def launch_running(jobs_dir: Path) -> bool:
    """Whether an mtl-launch holds ``jobs/.lock`` now: it is submitting, or running a local grid whose runs not
    yet started still look new (mtl-status --watch goes on meanwhile). A brief shared lock, released at once."""
    try:
        f = open(Path(jobs_dir) / ".lock")
    except OSError:
        return False
    with f:
        try:
            fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        except OSError:
            return False
        fcntl.flock(f, fcntl.LOCK_UN)
    return False


def git_commit(repo: Path) -> str | None:
    """The checked-out commit (with ``-dirty``), or None outside git."""
    res = run_command(["git", "-C", str(repo), "rev-parse", "HEAD"], timeout=5)
    if res is None or res.returncode != 0:
        return None
    dirty = run_command(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"], timeout=5)
    return res.stdout.strip() + ("-dirty" if dirty is not None and dirty.stdout.strip() else "")

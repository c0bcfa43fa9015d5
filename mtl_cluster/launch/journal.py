"""The submission journal: what a launch is about to submit, written down before sbatch, so a launch cut
short (sbatch failing on array 3 of 5, Ctrl-C, SIGKILL, a dropped login session) leaves no job that
``jobs/`` does not know about, and no run is ever submitted twice.

One file per launch, ``jobs/journal/<token>.jsonl``, appended and fsynced line by line:

- ``launch``: the token, the cluster, the submitit folder;
- ``intent`` (before each sbatch): the array's number and its runs (folder, config);
- ``submitted`` (after sbatch returned): its job id; ``released``: the hold is lifted.

Every job carries ``--comment=mtl-launch:<token>:<array>`` and is submitted held (``--hold``): it cannot
start before its launch has moved submitit's pickles into place and released it. The launch removes its
journal once its jobs/ record is written. A journal still there belongs to a launch that died, and
``reconcile`` (run by mtl-launch, mtl-status and mtl-launch --cancel, under the launch lock) settles it
intent by intent: a job squeue or sacct knows by that comment is *adopted* (its pickles restored if
missing, released if held, written to jobs/ as an ordinary launch record); an intent Slurm has no job for
is *forgotten* (its runs are planned again). When neither squeue nor sacct can tell, the intent stays in
the journal and its runs are *unsure*: the caller does not submit them (better a run late than twice).
"""
from __future__ import annotations

import json
import os
import secrets
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence, TypedDict

from ..errors import MtlError
from ..fsio import append_line, atomic_write_text
from . import slurmq
from .ledger import latest_jobs, launch_lock, write_record

COMMENT_PREFIX = "mtl-launch:"
SACCT_SLACK_S = 300     # sacct is asked from this long before the launch began (clock skew, slow dbd)


class IntentRun(TypedDict):
    """One run of an intent (``submit._intent_run``): enough to record it, and to rebuild its job's pickle."""

    name: str
    label: str
    signature: str
    run_dir: str
    config: dict[str, Any]     # the run's TrainConfig.to_dict(): the job's YAML config


# (submitit folder, job id, runs of the intent, timeout_min, max_requeues) -> each run's log; puts back
# the job's pickles when the launch died before submitit moved them (launch.adopt).
Adopt = Callable[[str, str, list[IntentRun], int, int], list[str]]


def folder(jobs_dir: Path) -> Path:
    return Path(jobs_dir) / "journal"


def comment(token: str, array: int) -> str:
    """The job's ``--comment``: how Slurm is asked about an intent."""
    return f"{COMMENT_PREFIX}{token}:{array}"


class Journal:
    """The journal of the launch in progress (the caller holds the launch lock)."""

    def __init__(self, jobs_dir: Path, cluster: str, logs: str):
        self.token = time.strftime("%Y%m%d%H%M%S") + "-" + secrets.token_hex(4)
        self.path = folder(jobs_dir) / f"{self.token}.jsonl"
        atomic_write_text(self.path, json.dumps(
            {"event": "launch", "token": self.token, "cluster": cluster, "logs": logs,
             "time": time.strftime("%Y-%m-%dT%H:%M:%S"), "host": socket.gethostname(), "pid": os.getpid()}) + "\n")

    def _add(self, **entry: object) -> None:
        append_line(self.path, json.dumps(entry))

    def intent(self, array: int, of: int, runs: Sequence[IntentRun], timeout_min: int,
               max_requeues: int) -> str:
        """Record what the next sbatch submits (durably, before it runs); returns the job's comment."""
        self._add(event="intent", array=array, of=of, runs=list(runs), timeout_min=timeout_min,
                  max_requeues=max_requeues)
        return comment(self.token, array)

    def submitted(self, array: int, job_id: str) -> None:
        self._add(event="submitted", array=array, job_id=job_id)

    def released(self, array: int) -> None:
        self._add(event="released", array=array)

    def close(self) -> None:
        """The launch record holds it all now: the journal is done."""
        self.path.unlink(missing_ok=True)


@dataclass
class Intent:
    token: str
    array: int
    runs: list[IntentRun]
    timeout_min: int
    max_requeues: int
    job_id: str | None = None
    released: bool = False
    settled: bool = False


@dataclass
class Report:
    """What reconcile did: counts of runs and the job ids it adopted, and why some runs stay unsure."""

    adopted_runs: int = 0
    adopted_jobs: list[str] = field(default_factory=list)
    forgotten_runs: int = 0
    unsure: dict[str, str] = field(default_factory=dict)   # run folder -> why its job is unknown
    records: list[Path] = field(default_factory=list)
    busy: bool = False                                     # another launch holds the lock: nothing done

    def lines(self) -> list[str]:
        """One line per outcome, for the CLI to print (none when there was nothing to settle)."""
        out = []
        if self.adopted_runs:
            out.append(f"adopted {self.adopted_runs} run(s) queued by an interrupted launch: job(s) "
                       f"{' '.join(self.adopted_jobs)}")
        if self.forgotten_runs:
            out.append(f"{self.forgotten_runs} run(s) of an interrupted launch never reached Slurm: planned again")
        if self.unsure:
            why = sorted(set(self.unsure.values()))[0]
            out.append(f"{len(self.unsure)} run(s) of an interrupted launch are not submitted again: whether "
                       f"their job was queued is unknown ({why}); run the command again when Slurm answers")
        return out


def _read(path: Path) -> tuple[dict[str, object], list[Intent]]:
    """The launch line and the intents of one journal; a torn last line (a kill mid-write) is skipped."""
    head: dict[str, object] = {}
    intents: dict[int, Intent] = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            e = json.loads(line)
        except ValueError:
            continue
        if not isinstance(e, dict):
            continue
        kind, n = e.get("event"), e.get("array")
        if kind == "launch":
            head = e
        elif kind == "intent" and isinstance(n, int) and isinstance(e.get("runs"), list):
            intents[n] = Intent(str(head.get("token", path.stem)), n, e["runs"], int(e.get("timeout_min") or 5),
                                int(e.get("max_requeues") or 0))
        elif n in intents:
            if kind == "submitted":
                intents[n].job_id = str(e.get("job_id"))
            elif kind == "released":
                intents[n].released = True
            elif kind in ("adopted", "forgotten"):
                intents[n].settled = True
    return head, sorted(intents.values(), key=lambda i: i.array)


def _since(head: Mapping[str, object], path: Path) -> str:
    try:
        t0 = time.mktime(time.strptime(str(head.get("time")), "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        t0 = path.stat().st_mtime
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(t0 - SACCT_SLACK_S))


def reconcile(jobs_dir: Path, adopt: Adopt | None = None) -> Report:
    """Settle the journals of launches that died. The caller holds ``ledger.launch_lock(jobs_dir)``.

    ``adopt`` puts back a queued job's pickles if missing; the job is then released if held. Without it
    (--cancel) a held job is adopted and stays held. No journal: no Slurm query at all.
    """
    report = Report()
    paths = sorted(folder(jobs_dir).glob("*.jsonl"))
    if not paths:
        return report
    queued = slurmq.queued_by_comment(COMMENT_PREFIX)
    live = {j: held for j, held in (queued or {}).values()}
    jobs = latest_jobs(jobs_dir)
    accounted: dict[str, dict[str, str] | None] = {}
    for path in paths:
        head, intents = _read(path)
        adopted: list[tuple[Intent, list[str]]] = []
        for it in (i for i in intents if not i.settled):
            why = _settle(it, queued, accounted, head, path)
            if why is None and it.job_id in live and adopt is not None:
                logs = adopt(str(head.get("logs", "")), it.job_id, it.runs, it.timeout_min, it.max_requeues)
                problem = slurmq.release([it.job_id]) if live[it.job_id] else None
                why = f"scontrol release: {problem}" if problem else None
            else:
                logs = [""] * len(it.runs)
            if why:
                report.unsure.update({str(r.get("run_dir")): why for r in it.runs})
            elif it.job_id is None:
                append_line(path, json.dumps({"event": "forgotten", "array": it.array}))
                report.forgotten_runs += len(it.runs)
            elif all(getattr(jobs.get(str(r.get("run_dir"))), "job_id", "").split("_")[0] == it.job_id
                     for r in it.runs):   # the launch wrote its record, then died before removing its journal
                append_line(path, json.dumps({"event": "adopted", "array": it.array, "job_id": it.job_id}))
            else:
                adopted.append((it, logs))
        if adopted:
            report.records.append(_record(jobs_dir, head, adopted))
            report.adopted_runs += sum(len(it.runs) for it, _ in adopted)
            report.adopted_jobs += [str(it.job_id) for it, _ in adopted]
        for it, _ in adopted:
            append_line(path, json.dumps({"event": "adopted", "array": it.array, "job_id": it.job_id}))
        if not any(str(r.get("run_dir")) in report.unsure for it in intents for r in it.runs):
            path.unlink(missing_ok=True)
    return report


def _settle(it: Intent, queued: dict[str, tuple[str, bool]] | None, accounted: dict[str, dict[str, str] | None],
            head: Mapping[str, object], path: Path) -> str | None:
    """Find the intent's job by its comment (sets ``it.job_id``; None: it never reached Slurm); returns
    why that cannot be told, or None."""
    tag = comment(it.token, it.array)
    if queued is None:
        return "squeue did not answer"
    if tag in queued:
        it.job_id = queued[tag][0]
        return None
    if it.job_id is not None:
        return None                       # sbatch returned it and it has left squeue: ran or was cancelled
    key = str(path)
    if key not in accounted:
        accounted[key] = slurmq.accounted_by_comment(COMMENT_PREFIX, _since(head, path))
    known = accounted[key]
    if known is None:
        return "not in squeue, and sacct cannot be asked or keeps no job comments"
    it.job_id = known.get(tag)
    return None


def _record(jobs_dir: Path, head: Mapping[str, object], adopted: list[tuple[Intent, list[str]]]) -> Path:
    """A launch record for the adopted jobs, so plan and status treat their runs like any other."""
    runs = []
    for it, logs in adopted:
        for i, (r, log) in enumerate(zip(it.runs, logs)):
            job = it.job_id if len(it.runs) == 1 else f"{it.job_id}_{i}"    # submitit's ids of a job array
            runs.append({k: r.get(k) for k in ("name", "label", "signature", "run_dir")}
                        | {"action": "adopted", "job_id": job, "log": log or None, "depends_on": []})
    record = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "cluster": head.get("cluster", "x"),
              "adopted_from": head.get("token"), "runs": runs,
              "arrays": [{"job_id": it.job_id, "size": len(it.runs), "dependency": None} for it, _ in adopted]}
    return write_record(jobs_dir, record, suffix="-adopted")


def reconcile_if_idle(jobs_dir: Path, adopt: Adopt | None = None) -> Report:
    """``reconcile`` under the launch lock, for mtl-status and --cancel. While a launch holds the lock its
    journal is alive: nothing is touched then (``busy``)."""
    if not any(folder(jobs_dir).glob("*.jsonl")):
        return Report()
    try:
        with launch_lock(jobs_dir, wait_s=0):
            return reconcile(jobs_dir, adopt)
    except MtlError:
        return Report(busy=True)

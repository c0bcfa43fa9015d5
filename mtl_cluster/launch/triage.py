"""Failures triaged by cause: which runs need a human, why, and the one command that retries each group.

The trainer's own verdict comes first (status.json ``cause``, carried on ``RunStatus.cause``: a NaN loss,
missing data, a stalled run...). Where the trainer could not say (it was killed), what Slurm wrote into the
job's own log when it killed it comes next (``SLURM_KILLS``: slurmstepd's line goes to the job's stderr), then
the scheduler's end state (sacct, through ``RunStatus.job_state``). The log comes before sacct because sacct does
not always name memory: on this project's local Slurm (``JobAcctGatherParams=OverMemoryKill``, no cgroups) a job
killed for memory ends FAILED with exit 9:0, and only its log says "exceeded memory limit". A Python exception
is grouped by its last traceback line, which status.json's reason holds. Reads, never writes, never prints
(``mtl-status --failures`` shows it).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from ..rundir import RunDir, read_jsonl
from ..states import CAUSE_TITLES, Cause, State
from .clusters import ClusterProfile
from .status import RunStatus

SACCT_CAUSES: dict[str, Cause] = {
    "OUT_OF_MEMORY": Cause.OOM, "TIMEOUT": Cause.TIMEOUT, "DEADLINE": Cause.TIMEOUT,
    "NODE_FAIL": Cause.NODE_FAIL, "BOOT_FAIL": Cause.NODE_FAIL, "CANCELLED": Cause.CANCELLED,
}
"""sacct's end states that say why a job ended where the trainer could not (it was killed)."""

_STEPD = r"^slurmstepd(?:-\S+)?: (?:error: )?"
SLURM_KILLS: tuple[tuple[re.Pattern[str], Cause], ...] = (
    (re.compile(_STEPD + r".*exceeded (?:job |step )?memory limit", re.I), Cause.OOM),   # jobacct_gather OverMemoryKill
    (re.compile(_STEPD + r".*oom[-_]kill", re.I), Cause.OOM),        # cgroups: "Detected 1 oom-kill event(s) in ..."
    (re.compile(_STEPD + r".*DUE TO TIME LIMIT"), Cause.TIMEOUT),
    (re.compile(_STEPD + r".*DUE TO NODE FAIL"), Cause.NODE_FAIL),
)
"""The lines slurmstepd writes into a job's stderr when it kills the job, and what each means."""
LOG_TAIL_BYTES = 64 * 1024   # the kill is at the end of the log; a long log is not read whole

RETRY_MEMORY = 2.0      # an out-of-memory group is retried with twice the memory it had
RETRY_TIME = 2.0        # a time limit without a checkpoint: twice the time
NO_MEMORY_SET_GB = 16   # what to ask for where the profile set none (the cluster's default was too little)


@dataclass(frozen=True)
class Verdict:
    """Why one run needs attention: a cause, and within it what tells groups apart (an exception's line)."""

    cause: Cause
    detail: str = ""


@dataclass(frozen=True)
class Evidence:
    """Slurm's own line on why it killed a job, and the log it is in."""

    cause: Cause
    line: str
    log: str


@dataclass
class FailureGroup:
    """Runs that failed for one reason, a log to read, and what to change when retrying them."""

    cause: Cause
    detail: str
    runs: list[RunStatus] = field(default_factory=list)
    resources: dict[str, float | int] = field(default_factory=dict)   # --resources for the retry
    retry_failed: bool = True      # failed runs need --retry-failed; died/cancelled ones a launch resumes
    hint: str = ""
    evidence: Evidence | None = None   # Slurm's line on the kill, from the first run whose log has one

    @property
    def title(self) -> str:
        return CAUSE_TITLES[self.cause] + (f": {self.detail}" if self.detail else "")

    @property
    def log(self) -> str | None:
        """One log to read: the one Slurm's kill line is in, else the first run's (Slurm's job log where the
        ledger has it, else log.txt)."""
        return self.evidence.log if self.evidence else next((r.log for r in self.runs if r.log), None)

    @property
    def experiments(self) -> list[str]:
        """The experiments to name with --only (a fine-tune's parent comes along; completed runs are skipped)."""
        return list(dict.fromkeys(r.spec.name for r in self.runs))


def verdict(st: RunStatus, killed_by: Evidence | None = None) -> Verdict | None:
    """Why ``st`` needs attention, or None (completed, live, new, or interrupted and resumable as usual).
    ``killed_by``: what its job's log says killed it (``slurm_kill``)."""
    if st.state not in (State.FAILED, State.DIED, State.INTERRUPTED):
        return None
    reason = st.detail if st.state == State.FAILED else ""
    if st.state == State.FAILED and st.cause in {c.value for c in Cause}:
        cause = Cause(str(st.cause))
        return Verdict(cause, _first_line(reason) if cause == Cause.EXCEPTION else "")
    if killed_by is not None:
        return Verdict(killed_by.cause)
    killed = SACCT_CAUSES.get(st.job_state or "")
    if killed is not None:
        return Verdict(killed)
    if st.state == State.INTERRUPTED:
        return None
    if st.state == State.FAILED:   # a run folder written before causes were recorded
        return Verdict(Cause.NAN) if reason.startswith("loss is ") else Verdict(Cause.EXCEPTION, _first_line(reason))
    return Verdict(Cause.EXCEPTION, "the job ended without a word (no cause in status.json, its log or sacct)")


def _job_logs(log: str) -> list[Path]:
    """A submitit job log (``..._log.out``) and its stderr beside it, where slurmstepd writes; stderr first."""
    out = Path(log)
    err = out.with_name(out.name[: -len(".out")] + ".err") if out.name.endswith("_log.out") else None
    return [p for p in (err, out) if p is not None]


def _tail(path: Path) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - LOG_TAIL_BYTES))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def slurm_kill(st: RunStatus) -> Evidence | None:
    """The newest line in the run's job log where slurmstepd says it killed the job (memory, time, node), or
    None. Only for a run whose trainer could not say why it ended (no ``cause``) and whose job is not live."""
    if st.state not in (State.FAILED, State.DIED, State.INTERRUPTED) or st.cause or not st.log:
        return None
    for path in _job_logs(st.log):
        found = [(cause, line.strip()) for line in _tail(path).splitlines()
                 for pattern, cause in SLURM_KILLS if pattern.search(line)]
        if found:   # the newest kill; of its lines, the newest with figures ("(1223421952 > 1073741824)")
            cause = found[-1][0]
            lines = [line for c, line in found if c == cause]
            return Evidence(cause, next((x for x in reversed(lines) if _FIGURES.search(x)), lines[-1]), str(path))
    return None


_FIGURES = re.compile(r"\d+ > \d+")


def _first_line(text: str, width: int = 120) -> str:
    line = text.strip().splitlines()[0] if text.strip() else "no reason recorded"
    return line if len(line) <= width else line[: width - 1] + "…"


def triage(statuses: Sequence[RunStatus], prof: ClusterProfile | None) -> list[FailureGroup]:
    """The runs that need attention, grouped by verdict (largest group first), each with its retry."""
    groups: dict[Verdict, FailureGroup] = {}
    for st in statuses:
        evidence = slurm_kill(st)
        v = verdict(st, evidence)
        if v is None:
            continue
        group = groups.setdefault(v, FailureGroup(v.cause, v.detail, retry_failed=st.state == State.FAILED))
        group.runs.append(st)
        group.retry_failed = group.retry_failed or st.state == State.FAILED
        if group.evidence is None and evidence is not None and evidence.cause == v.cause:
            group.evidence = evidence
    out = sorted(groups.values(), key=lambda g: (-len(g.runs), g.cause, g.detail))
    for group in out:
        group.resources, group.hint = _change(group, prof)
    return out


def _current(group: FailureGroup, prof: ClusterProfile | None, key: str) -> float | None:
    """The largest value of a resource the group's runs had: what Slurm gave their last attempts (attempts.jsonl
    ``slurm``: a --resources of that launch included), else their experiment's ``resources:`` over the profile."""
    numbers = []
    for r in group.runs:
        had = _recorded(Path(r.spec.run_dir), key)
        if had is None:
            value = r.spec.resources.get(key, getattr(prof, key, None) if prof else None)
            had = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
        if had is not None:
            numbers.append(had)
    return max(numbers) if numbers else None


_RECORDED = {"mem_gb": ("mem_mib", 1 / 1024), "timeout_min": ("time_limit_s", 1 / 60)}


def _recorded(run_dir: Path, key: str) -> float | None:
    """``key`` (mem_gb, timeout_min) as the run's newest attempt with a Slurm record ran under, or None."""
    field_name, scale = _RECORDED[key]
    for line in reversed(read_jsonl(RunDir(run_dir).attempts_file)):
        slurm = line.get("slurm") if line.get("event") == "start" else None
        if isinstance(slurm, dict):
            value = slurm.get(field_name)
            return float(value) * scale if isinstance(value, (int, float)) and value > 0 else None
    return None


def _change(group: FailureGroup, prof: ClusterProfile | None) -> tuple[dict[str, float | int], str]:
    """The resource change the cause calls for, and a line on what else to do."""
    if group.cause == Cause.OOM:
        now = _current(group, prof, "mem_gb")
        want = math.ceil(now * RETRY_MEMORY) if now else NO_MEMORY_SET_GB
        return {"mem_gb": want}, (f"had {now:g} GB" if now else "the profile sets no mem_gb (the cluster's "
                                  "default applied)") + f"; retried with {want} GB"
    if group.cause == Cause.TIMEOUT:
        now = _current(group, prof, "timeout_min")
        want = math.ceil((now or 60) * RETRY_TIME)
        return {"timeout_min": want}, (f"had {now:g} min" if now else "") + f"; retried with {want} min, or a " \
            "lower checkpoint_every_min so a time limit costs less"
    hints = {
        Cause.NAN: "training is deterministic, so the same settings will most likely fail at the same step: "
                   "lower lr_rate (--set lr_rate=..., new runs in new folders) rather than retry",
        Cause.DATA: "check the copy the runs read first (mtl-data check, with the study and its --cluster)",
        Cause.CONFIG: "fix the key the reason names",
        Cause.DISK_FULL: "free space first; the newest checkpoint is intact",
        Cause.STALLED: "find what killed its attempts (sacct, the job log): memory, preemption, a node",
        Cause.NODE_FAIL: "a launch resumes them from their checkpoints; exclude: the node if it repeats",
        Cause.CANCELLED: "a launch resumes them from their checkpoints",
        Cause.EXCEPTION: "read the log: a bug or an environment problem",
    }
    return {}, hints.get(group.cause, "")


def retry_words(group: FailureGroup, launch: Sequence[str]) -> list[str]:
    """The mtl-launch command that retries the group: ``launch`` (the words that pick the grid and its
    folders, as mtl-status got them) with --only its experiments, --retry-failed where a run failed, and
    --resources for the change its cause calls for."""
    words = [*launch, "--only", *group.experiments]
    words += ["--retry-failed"] if group.retry_failed else []
    for key, value in group.resources.items():
        words += ["--resources", f"{key}={value}"]
    return words


def check_words(group: FailureGroup, launch: Sequence[str]) -> list[str] | None:
    """The ``mtl-data check`` that checks the data copy a data-error group's runs read: the study and its
    ``--cluster`` from ``launch`` (the retry's words), or None (another cause, or no cluster to name)."""
    if group.cause != Cause.DATA or "--cluster" not in launch[:-1]:
        return None
    return ["mtl-data", "check", launch[1], "--cluster", launch[list(launch).index("--cluster") + 1]]


def counts(groups: Sequence[FailureGroup]) -> Mapping[Cause, int]:
    """Runs per cause, for a one-line summary."""
    out: dict[Cause, int] = {}
    for g in groups:
        out[g.cause] = out.get(g.cause, 0) + len(g.runs)
    return out

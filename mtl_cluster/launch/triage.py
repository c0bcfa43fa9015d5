"""Failures triaged by cause: which runs need a human, why, and the one command that retries each group.

The trainer's own verdict comes first (status.json ``cause``: a NaN loss, missing data, a stalled run...);
where the trainer could not say (a job killed for memory, at its time limit, on a failing node, cancelled),
the scheduler's end state does (sacct, through ``RunStatus.job_state``). A Python exception is grouped by its
last traceback line, which status.json's reason holds. Reads, never writes, never prints (``mtl-status
--failures`` shows it).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from ..rundir import RunDir
from ..states import CAUSE_TITLES, Cause, State
from .clusters import ClusterProfile
from .status import RunStatus

SACCT_CAUSES: dict[str, Cause] = {
    "OUT_OF_MEMORY": Cause.OOM, "TIMEOUT": Cause.TIMEOUT, "DEADLINE": Cause.TIMEOUT,
    "NODE_FAIL": Cause.NODE_FAIL, "BOOT_FAIL": Cause.NODE_FAIL, "CANCELLED": Cause.CANCELLED,
}
"""sacct's end states that say why a job ended where the trainer could not (it was killed)."""

RETRY_MEMORY = 2.0      # an out-of-memory group is retried with twice the memory it had
RETRY_TIME = 2.0        # a time limit without a checkpoint: twice the time
NO_MEMORY_SET_GB = 16   # what to ask for where the profile set none (the cluster's default was too little)


@dataclass(frozen=True)
class Verdict:
    """Why one run needs attention: a cause, and within it what tells groups apart (an exception's line)."""

    cause: Cause
    detail: str = ""


@dataclass
class FailureGroup:
    """Runs that failed for one reason, a log to read, and what to change when retrying them."""

    cause: Cause
    detail: str
    runs: list[RunStatus] = field(default_factory=list)
    resources: dict[str, float | int] = field(default_factory=dict)   # --resources for the retry
    retry_failed: bool = True      # failed runs need --retry-failed; died/cancelled ones a launch resumes
    hint: str = ""

    @property
    def title(self) -> str:
        return CAUSE_TITLES[self.cause] + (f": {self.detail}" if self.detail else "")

    @property
    def log(self) -> str | None:
        """One log to read: the first run's (Slurm's job log where the ledger has it, else log.txt)."""
        return next((r.log for r in self.runs if r.log), None)

    @property
    def experiments(self) -> list[str]:
        """The experiments to name with --only (a fine-tune's parent comes along; completed runs are skipped)."""
        return list(dict.fromkeys(r.spec.name for r in self.runs))


def verdict(st: RunStatus) -> Verdict | None:
    """Why ``st`` needs attention, or None (completed, live, new, or interrupted and resumable as usual)."""
    if st.state not in (State.FAILED, State.DIED, State.INTERRUPTED):
        return None
    status = RunDir(st.spec.run_dir).read_status()
    reason = str(status.get("reason") or "")
    recorded = status.get("cause")
    if st.state == State.FAILED and recorded in {c.value for c in Cause}:
        cause = Cause(str(recorded))
        return Verdict(cause, _first_line(reason) if cause == Cause.EXCEPTION else "")
    killed = SACCT_CAUSES.get(st.job_state or "")
    if killed is not None:
        return Verdict(killed)
    if st.state == State.INTERRUPTED:
        return None
    if st.state == State.FAILED:   # a run folder written before causes were recorded
        return Verdict(Cause.NAN) if reason.startswith("loss is ") else Verdict(Cause.EXCEPTION, _first_line(reason))
    return Verdict(Cause.EXCEPTION, "the job ended without a word (no cause in status.json or sacct)")


def _first_line(text: str, width: int = 120) -> str:
    line = text.strip().splitlines()[0] if text.strip() else "no reason recorded"
    return line if len(line) <= width else line[: width - 1] + "…"


def triage(statuses: Sequence[RunStatus], prof: ClusterProfile | None) -> list[FailureGroup]:
    """The runs that need attention, grouped by verdict (largest group first), each with its retry."""
    groups: dict[Verdict, FailureGroup] = {}
    for st in statuses:
        v = verdict(st)
        if v is None:
            continue
        group = groups.setdefault(v, FailureGroup(v.cause, v.detail, retry_failed=st.state == State.FAILED))
        group.runs.append(st)
        group.retry_failed = group.retry_failed or st.state == State.FAILED
    out = sorted(groups.values(), key=lambda g: (-len(g.runs), g.cause, g.detail))
    for group in out:
        group.resources, group.hint = _change(group, prof)
    return out


def _current(group: FailureGroup, prof: ClusterProfile | None, key: str) -> float | None:
    """The largest value of a resource the group's runs had: their experiment's ``resources:`` over the profile."""
    values = [r.spec.resources.get(key, getattr(prof, key, None) if prof else None) for r in group.runs]
    numbers = [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return max(numbers) if numbers else None


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
        Cause.DATA: "check the copy first: mtl-data check <experiments> --cluster <name>",
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


def counts(groups: Sequence[FailureGroup]) -> Mapping[Cause, int]:
    """Runs per cause, for a one-line summary."""
    out: dict[Cause, int] = {}
    for g in groups:
        out[g.cause] = out.get(g.cause, 0) + len(g.runs)
    return out

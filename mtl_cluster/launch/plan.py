"""What a launch will do and whether it can: every run's state and action, fine-tune dependencies, and
the preflight checks that catch in seconds what would otherwise fail after hours in the queue.

No submitit here (``submit`` submits): a dry run plans without it, and mtl-status uses its preflight.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from ..config import TrainConfig
from ..datacheck.check import shortfalls
from ..datacheck.count import parts_of
from ..hubcache import imagenet_weights, missing_weights_message
from ..states import LIVE_STATES, Action, Kind, State
from .clusters import ClusterProfile
from .grid import RunSpec
from .ledger import job_ids, latest_jobs
from .slurmq import partition_exists, reachable, slurm_states
from .status import RunStatus, action, grid_status, submits


@dataclass
class PlanRow:
    """One run of the plan: its state now, what this launch does, and the jobs it must wait for."""

    status: RunStatus
    action: Action
    after: list[str] = field(default_factory=list)         # job ids (afterok)
    after_runs: list[RunSpec] = field(default_factory=list)  # runs submitted in this launch
    wave: int = 0
    job_id: str | None = None
    log: str | None = None

    @property
    def spec(self) -> RunSpec:
        return self.status.spec


def plan(specs: Sequence[RunSpec], jobs_dir: Path, *, retry_failed: bool = False, force: bool = False,
         use_slurm: bool = True, unsure: Mapping[str, str] | None = None) -> list[PlanRow]:
    """The state and action of every run, with the dependencies of fine-tune runs resolved.

    ``unsure``: run folder -> why an interrupted launch may have queued it (``journal.Report.unsure``):
    skipped, never submitted a second time on a guess.
    """
    jobs = latest_jobs(jobs_dir)
    ids = job_ids(jobs, (s.run_dir for s in specs))
    states = slurm_states(ids.values()) if use_slurm else {}
    statuses = grid_status(specs, jobs, states)
    rows = [PlanRow(st, action(st, retry_failed, force)) for st in statuses]
    for row in rows:
        if unsure and str(row.spec.run_dir) in unsure and submits(row.action):
            row.action = Action(Kind.SKIP, f"an interrupted launch's job is unknown: {unsure[str(row.spec.run_dir)]}")
    by_dir = {r.spec.run_dir: r for r in rows}
    for row in rows:                                    # specs are in dependency order
        parent = by_dir.get(row.spec.init_run_dir) if row.spec.init_run_dir else None
        if parent is None or not submits(row.action):
            continue
        if submits(parent.action):
            row.after_runs.append(parent.spec)
            row.wave = parent.wave + 1
        elif parent.status.state in LIVE_STATES and parent.status.job_id:
            row.after.append(parent.status.job_id)
        elif parent.status.state != State.COMPLETED:
            row.action = Action(Kind.SKIP, f"waits for {parent.spec.label} ({parent.status.state})")
    return rows


# -- preflight --------------------------------------------------------------------------------------
def data_paths(cfg: TrainConfig) -> list[Path]:
    """The dataset files and folders this run reads (none for synthetic data)."""
    return [part.path for part in parts_of(cfg)]


def data_count_shortfalls(rows: Sequence[PlanRow], prof: ClusterProfile) -> list[str]:
    """Splits of the submitted runs' data with far fewer images than the release has (a partial copy), by
    counting files and label rows only; empty when the profile's ``data_counts`` is off. The caller warns
    (``warn``, the default) or ``preflight`` refuses (``refuse``)."""
    if prof.data_counts == "off":
        return []
    parts = dict.fromkeys(p for r in rows if submits(r.action) for p in parts_of(r.spec.config))
    return [f"{line} (clusters.{prof.name}.data_counts: {prof.data_counts})" for line in shortfalls(parts)]


def not_writable(folder: Path) -> str | None:
    """Why nothing can be written under ``folder`` (probed in its nearest existing parent), or None.

    A real probe, not permission bits: root ignores those, a read-only or full filesystem does not.
    """
    probe = Path(folder).absolute()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        return f"{probe} is not a folder"
    try:
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as exc:
        return f"{probe}: {exc.strerror}"
    return None


def preflight(rows: Sequence[PlanRow], prof: ClusterProfile, folders: Sequence[tuple[str, Path]] = ()
              ) -> list[str]:
    """Problems that would only show after hours in the queue: missing data, no Slurm, no partition,
    ``folders`` (``(what, path)``: results, jobs, logs) that cannot be written, and (``data_counts: refuse``)
    a partial dataset copy."""
    problems = []
    for what, folder in folders:
        why = not_writable(folder)
        if why:
            problems.append(f"{what} folder {folder} is not writable ({why})")
    if prof.is_slurm:
        why = reachable()
        if why:
            problems.append(f"cluster {prof.name}: {why}")
        elif prof.partition and partition_exists(prof.partition) is False:
            problems.append(f"cluster {prof.name}: partition {prof.partition!r} does not exist (sinfo)")
    weights = imagenet_weights()
    if not weights.is_file() and any(r.spec.config.backbone_weights == "imagenet" for r in rows if submits(r.action)):
        problems.append(missing_weights_message(weights))
    roots = {Path(r.spec.config.data.root).expanduser() for r in rows
             if submits(r.action) and data_paths(r.spec.config)}    # each run's own root: --set data.root= wins
    absent = sorted(root for root in roots if not root.is_dir())
    if absent:
        profile_root = Path(prof.data_root).expanduser()
        return problems + [f"clusters.{prof.name}.data_root {root} does not exist on this host" if root == profile_root
                           else f"data.root {root} does not exist on this host" for root in absent]
    missing: dict[Path, str] = {}
    for row in rows:
        if submits(row.action):
            for p in data_paths(row.spec.config):
                if p not in missing and not p.exists():
                    missing[p] = row.spec.label
    for p, label in list(missing.items())[:5]:
        problems.append(f"data for {label} not found: {p} (clusters.{prof.name}.data_root or data.* keys)")
    if len(missing) > 5:
        problems.append(f"... and {len(missing) - 5} more missing data paths")
    if prof.data_counts == "refuse":
        problems += data_count_shortfalls(rows, prof)
    return problems

"""What a launch will do and whether it can: every run's state and action, fine-tune dependencies, and
the preflight checks that catch in seconds what would otherwise fail after hours in the queue.

No submitit here (``launch`` submits): a dry run plans without it, and mtl-status uses its preflight.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from .clusters import ClusterProfile
from .config import TrainConfig
from .grid import RunSpec
from .hubcache import imagenet_weights, missing_weights_message
from .ledger import job_ids, latest_jobs
from .slurmq import partition_exists, reachable, slurm_states
from .states import LIVE_STATES, Action, Kind, State
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
         use_slurm: bool = True) -> list[PlanRow]:
    """The state and action of every run, with the dependencies of fine-tune runs resolved."""
    jobs = latest_jobs(jobs_dir)
    ids = job_ids(jobs, (s.run_dir for s in specs))
    states = slurm_states(ids.values()) if use_slurm else {}
    statuses = grid_status(specs, jobs, states)
    rows = [PlanRow(st, action(st, retry_failed, force)) for st in statuses]
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
    d = cfg.data
    if cfg.dataset == "synthetic" or d.synthetic:
        return []
    if cfg.dataset == "IMDB-WIKI":
        return [d.path(d.imdb_wiki if d.imdb_wiki_layout == "aligned" else d.imdb_wiki_mat)]
    out = []
    for task in cfg.active_tasks:
        if task == "emotion":
            out.append(d.path(d.fer2013))
        elif d.chalearn_layout == "official":
            out.append(d.path(d.chalearn_official))
        else:
            out.append(d.path(getattr(d, f"chalearn_{task}")))
    return out


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
    ``folders`` (``(what, path)``: results, jobs, logs) that cannot be written."""
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
    return problems

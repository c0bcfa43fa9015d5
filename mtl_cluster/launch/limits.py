"""The cluster's own limits, read before anything is queued, and what a launch does about them.

Read (each query a subprocess with a timeout, slurmq.run_command): ``scontrol show config`` (MaxArraySize,
MaxJobCount, AccountingStorageEnforce), ``scontrol show partition`` (MaxTime, State, the partition's TRES:
its GRES), and where accounting answers ``sacctmgr show assoc`` / ``sacctmgr show qos`` (the user's accounts
and QOS: MaxSubmitJobsPerUser, MaxTRESPerUser, MaxWall, GrpTRES). A query that fails (no accounting,
permission denied, a timeout) is a note, never a failure.

``check`` then says what cannot be submitted (a time limit above MaxTime or MaxWall, an unknown partition,
account or QOS, a GRES the partition lacks): one line each naming the limit, its value and the command it
came from; and what it reshapes so that Slurm takes the study (arrays split at MaxArraySize, an array's
parallelism throttled to the GPUs the QOS lets one user hold, a launch kept under MaxSubmitJobsPerUser), one
line each. Reads, never writes, never prints.
"""
from __future__ import annotations

import getpass
import os
import re
import subprocess
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from ..states import Action, Kind
from .clusters import ClusterProfile, with_resources
from .plan import PlanRow
from .slurmq import QUERY_TIMEOUT_S, run_command

SHOW_CONFIG = "scontrol show config"
SHOW_PARTITION = "scontrol show partition"
SHOW_ASSOC = "sacctmgr show assoc"
SHOW_QOS = "sacctmgr show qos"
ASSOC_FIELDS = ("Account", "Partition", "QOS", "DefaultQOS", "MaxSubmit", "MaxTRES", "MaxWall", "GrpTRES")
QOS_FIELDS = ("Name", "MaxSubmitPU", "MaxTRESPU", "MaxWall", "GrpTRES")
UNLIMITED = ("UNLIMITED", "INFINITE", "NONE", "N/A", "")


def minutes(text: str) -> int | None:
    """A Slurm time (``UNLIMITED``, ``MM``, ``MM:SS``, ``HH:MM:SS``, ``D-HH[:MM[:SS]]``) in whole minutes,
    rounded up; None for no limit or a text that is not a time."""
    text = text.strip()
    if text.upper() in UNLIMITED:
        return None
    m = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", text)
    if not m:
        return None
    days, a, b, c = (int(g) if g else None for g in m.groups())
    if days is not None:            # D-HH, D-HH:MM, D-HH:MM:SS
        secs = days * 86400 + (a or 0) * 3600 + (b or 0) * 60 + (c or 0)
    elif c is not None:             # HH:MM:SS
        secs = (a or 0) * 3600 + (b or 0) * 60 + c
    elif b is not None:             # MM:SS
        secs = (a or 0) * 60 + b
    else:                           # MM
        secs = (a or 0) * 60
    return -(-secs // 60)


def tres(text: str) -> dict[str, str]:
    """``cpu=2,gres/gpu=1`` -> {"cpu": "2", "gres/gpu": "1"}."""
    out = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if sep and key.strip():
            out[key.strip()] = value.strip()
    return out


def parse_config(text: str) -> dict[str, str]:
    """``scontrol show config``'s ``Key = Value`` lines."""
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() and " " not in key.strip():
            out[key.strip()] = value.strip()
    return out


@dataclass(frozen=True)
class Partition:
    name: str
    max_time: str = "UNLIMITED"     # as scontrol says it
    state: str = "UP"
    tres: str = ""                  # e.g. cpu=2,mem=21695M,node=1,billing=2,gres/gpu=2

    @property
    def max_time_min(self) -> int | None:
        return minutes(self.max_time)

    @property
    def gres(self) -> set[str]:
        """The GRES names the partition's nodes have (``gres/gpu`` -> ``gpu``, ``gres/gpu:a100`` -> both)."""
        out = set()
        for key in tres(self.tres):
            if key.startswith("gres/"):
                name = key[5:]
                out |= {name, name.split(":")[0]}
        return out


def parse_partitions(text: str) -> dict[str, Partition]:
    """``scontrol show partition -o`` (one partition a line of ``Key=Value`` words)."""
    out = {}
    for line in text.splitlines():
        words = dict(w.split("=", 1) for w in line.split() if "=" in w)
        if "PartitionName" in words:
            out[words["PartitionName"]] = Partition(words["PartitionName"], words.get("MaxTime", "UNLIMITED"),
                                                    words.get("State", "UP"), words.get("TRES", ""))
    return out


def parse_table(text: str, fields: Sequence[str]) -> list[dict[str, str]]:
    """``sacctmgr -nP ... format=...`` lines as dicts."""
    return [dict(zip(fields, line.split("|"))) for line in text.splitlines() if line.count("|") == len(fields) - 1]


@dataclass
class Limits:
    """What the cluster said; ``None`` where it could not be asked (``notes`` says why)."""

    config: dict[str, str] | None = None
    partitions: dict[str, Partition] | None = None
    assoc: list[dict[str, str]] | None = None      # the user's associations (sacctmgr show assoc)
    qos: dict[str, dict[str, str]] | None = None   # every QOS by name (sacctmgr show qos)
    queued: dict[str, int] = field(default_factory=dict)   # QOS -> this user's jobs (array tasks each) in squeue
    unenforced: str = ""                           # why account/QOS limits are not checked (said by --dry-run)
    notes: list[str] = field(default_factory=list)

    def config_int(self, key: str) -> int | None:
        try:
            return int((self.config or {}).get(key, ""))
        except ValueError:
            return None

    @property
    def enforced(self) -> bool:
        """Whether Slurm enforces association/QOS limits (AccountingStorageEnforce has limits, qos or safe)."""
        flags = (self.config or {}).get("AccountingStorageEnforce", "").lower()
        return any(f in flags for f in ("limits", "qos", "safe"))

    def lines(self, partition: str | None) -> list[str]:
        """What was read, one line per source (``--dry-run`` shows them)."""
        out = []
        if self.config is not None:
            out.append(f"{SHOW_CONFIG}: MaxArraySize={self.config.get('MaxArraySize', '?')} "
                       f"MaxJobCount={self.config.get('MaxJobCount', '?')} "
                       f"AccountingStorageEnforce={self.config.get('AccountingStorageEnforce', '?')}")
        for p in sorted((self.partitions or {}).values(), key=lambda p: p.name != partition):
            if partition is None or p.name == partition:
                out.append(f"{SHOW_PARTITION} {p.name}: MaxTime={p.max_time} State={p.state} "
                           f"GRES={','.join(sorted(p.gres)) or 'none'}")
        for a in self.assoc or []:
            out.append(f"{SHOW_ASSOC}: account={a.get('Account')} partition={a.get('Partition') or 'any'} "
                       f"QOS={a.get('QOS') or '-'} MaxSubmit={a.get('MaxSubmit') or '-'} "
                       f"MaxTRES={a.get('MaxTRES') or '-'} MaxWall={a.get('MaxWall') or '-'} "
                       f"GrpTRES={a.get('GrpTRES') or '-'}")
        for name, q in sorted((self.qos or {}).items()):
            out.append(f"{SHOW_QOS} {name}: MaxSubmitJobsPerUser={q.get('MaxSubmitPU') or '-'} "
                       f"MaxTRESPerUser={q.get('MaxTRESPU') or '-'} MaxWall={q.get('MaxWall') or '-'} "
                       f"GrpTRES={q.get('GrpTRES') or '-'}")
        return out


def _why(res: subprocess.CompletedProcess[str] | None, cmd: str) -> str:
    if res is None:
        return f"{cmd} is missing or did not answer within {QUERY_TIMEOUT_S:.0f}s"
    last = (res.stderr.strip().splitlines() or [f"exit {res.returncode}"])[-1]
    return f"{cmd} failed: {last}"


def read(user: str | None = None, timeout: float = QUERY_TIMEOUT_S) -> Limits:
    """Ask the cluster for its limits; whatever it will not say becomes a note."""
    user = user or os.environ.get("USER") or getpass.getuser()
    lim = Limits()
    res = run_command(["scontrol", "show", "config"], timeout)
    if res is not None and res.returncode == 0:
        lim.config = parse_config(res.stdout)
    else:
        lim.notes.append(f"{_why(res, SHOW_CONFIG)}: MaxArraySize not checked")
    res = run_command(["scontrol", "show", "partition", "-o"], timeout)
    if res is not None and res.returncode == 0:
        lim.partitions = parse_partitions(res.stdout)
    else:
        lim.notes.append(f"{_why(res, SHOW_PARTITION)}: partition limits not checked")
    res = run_command(["sacctmgr", "-nP", "show", "assoc", "where", f"user={user}",
                       "format=" + ",".join(ASSOC_FIELDS)], timeout)
    if res is not None and res.returncode == 0:
        lim.assoc = parse_table(res.stdout, ASSOC_FIELDS)
        res = run_command(["sacctmgr", "-nP", "show", "qos", "format=" + ",".join(QOS_FIELDS)], timeout)
        if res is not None and res.returncode == 0:
            lim.qos = {q["Name"]: q for q in parse_table(res.stdout, QOS_FIELDS)}
        else:
            lim.notes.append(f"{_why(res, SHOW_QOS)}: QOS limits not checked")
    else:
        lim.notes.append(f"{_why(res, SHOW_ASSOC)} (no accounting here?): account and QOS limits not checked")
    res = run_command(["squeue", "-h", "-r", "-u", user, "-o", "%q"], timeout)
    for qos in res.stdout.split() if res is not None and res.returncode == 0 else []:
        lim.queued[qos] = lim.queued.get(qos, 0) + 1
    if lim.assoc is not None and lim.config is not None and not lim.enforced:
        lim.unenforced = (f"AccountingStorageEnforce={lim.config.get('AccountingStorageEnforce', 'none')} "
                         f"({SHOW_CONFIG}): Slurm does not enforce account or QOS limits here; only their names "
                         f"are checked")
    return lim


@dataclass
class Shape:
    """What ``check`` found: refusals (nothing may be queued), and the reshaping it did, one line each."""

    refusals: list[str] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)      # what the cluster would not say (Limits.notes)
    max_array_size: int | None = None       # arrays split at this size (None: as the profile says)
    array_parallelism: int | None = None    # tasks of an array at once (None: as the profile/flag says)
    submit_at_most: int | None = None       # runs this launch may queue (None: all)


def _gpus(prof: ClusterProfile) -> int:
    """GPUs one task of the profile asks for (gres ``gpu:2``, ``gpu:a100:1``, or gpus_per_node)."""
    if prof.gres and prof.gres.split(":")[0] == "gpu":
        last = prof.gres.split(":")[-1]
        return int(last) if last.isdigit() else 1
    return prof.gpus_per_node or 0


def _per_user_gpus(text: str) -> int | None:
    value = tres(text).get("gres/gpu")
    return int(value) if value and value.isdigit() else None


def check(profiles: Mapping[str, ClusterProfile], lim: Limits, runs: int, array_parallelism: int | None
          ) -> Shape:
    """Refusals and reshaping for a launch of ``runs`` runs with these profiles (``where`` -> profile: the
    cluster's own and each experiment's ``resources:``)."""
    shape = Shape(notes=list(lim.notes))
    for where, prof in profiles.items():
        _check_partition(where, prof, lim, shape)
        if lim.assoc is not None:
            _check_assoc(where, prof, lim, shape, runs, array_parallelism)
    size = lim.config_int("MaxArraySize")
    base = next(iter(profiles.values()), None)
    if size is not None and base is not None and runs > size - 1 and base.max_array_size > size - 1:
        shape.max_array_size = max(1, size - 1)
        shape.changes.append(f"arrays split at {shape.max_array_size} runs: MaxArraySize is {size} "
                             f"({SHOW_CONFIG}; clusters.{base.name}.max_array_size is {base.max_array_size})")
    shape.refusals = list(dict.fromkeys(shape.refusals))
    shape.changes = list(dict.fromkeys(shape.changes))
    return shape


def _check_partition(where: str, prof: ClusterProfile, lim: Limits, shape: Shape) -> None:
    if lim.partitions is None or prof.partition is None:   # no partition: Slurm's default, sbatch picks it
        return
    part = lim.partitions.get(prof.partition)
    if part is None:
        if where == f"clusters.{prof.name}":     # plan.preflight says it already (sinfo)
            return
        shape.refusals.append(f"{where}: partition {prof.partition!r} does not exist ({SHOW_PARTITION}: "
                              f"{', '.join(sorted(lim.partitions)) or 'none'})")
        return
    limit = part.max_time_min
    if limit is not None and prof.timeout_min > limit:
        shape.refusals.append(f"{where}: timeout_min {prof.timeout_min} is above partition {part.name}'s "
                              f"MaxTime {part.max_time} ({limit} min, {SHOW_PARTITION} {part.name}): the job "
                              f"would never start (PartitionTimeLimit); lower timeout_min to {limit} or less")
    if part.state.upper() in ("INACTIVE", "DRAIN"):
        shape.refusals.append(f"{where}: partition {part.name} is State={part.state} ({SHOW_PARTITION} "
                              f"{part.name}): it takes no jobs")
    wanted = prof.gres.split(":")[0] if prof.gres else ("gpu" if prof.gpus_per_node else None)
    if wanted and part.tres and wanted not in part.gres:
        shape.refusals.append(f"{where}: partition {part.name} has no GRES {wanted!r} ({SHOW_PARTITION} "
                              f"{part.name}: TRES={part.tres})")


def _check_assoc(where: str, prof: ClusterProfile, lim: Limits, shape: Shape, runs: int,
                 array_parallelism: int | None) -> None:
    assoc = lim.assoc or []
    accounts = {a.get("Account", "") for a in assoc}
    mine = [a for a in assoc if not prof.account or a.get("Account") == prof.account]
    if prof.account and not mine:
        shape.refusals.append(f"{where}: account {prof.account!r} is not one of yours ({SHOW_ASSOC}: "
                              f"{', '.join(sorted(accounts)) or 'none'})")
        return
    allowed = {q for a in mine for q in (a.get("QOS") or "").split(",") if q}
    default = next((a.get("DefaultQOS") for a in mine if a.get("DefaultQOS")), None) or "normal"
    qos_name = prof.qos or default
    if lim.qos is not None and qos_name not in lim.qos:
        shape.refusals.append(f"{where}: QOS {qos_name!r} does not exist ({SHOW_QOS}: "
                              f"{', '.join(sorted(lim.qos)) or 'none'})")
        return
    if prof.qos and allowed and prof.qos not in allowed:
        shape.refusals.append(f"{where}: QOS {prof.qos!r} is not allowed for your association ({SHOW_ASSOC}: "
                              f"QOS={','.join(sorted(allowed))})")
    if not lim.enforced:          # a name is wrong either way; limits Slurm does not enforce are not checked
        return
    qos = (lim.qos or {}).get(qos_name, {})
    for text, what in [(qos.get("MaxWall", ""), f"QOS {qos_name}'s MaxWall ({SHOW_QOS})"),
                       *((a.get("MaxWall", ""), f"the association's MaxWall ({SHOW_ASSOC})") for a in mine)]:
        limit = minutes(text)
        if text and limit is not None and prof.timeout_min > limit:
            shape.refusals.append(f"{where}: timeout_min {prof.timeout_min} is above {what} {text} ({limit} min); "
                                  f"lower timeout_min to {limit} or less")
    gpus = _gpus(prof)
    cap = _per_user_gpus(qos.get("MaxTRESPU", ""))
    if gpus and cap is not None:
        at_once = max(1, cap // gpus)
        current = array_parallelism or prof.array_parallelism
        if current > at_once:
            shape.array_parallelism = min(at_once, shape.array_parallelism or at_once)
            shape.changes.append(f"array parallelism throttled to {at_once}: QOS {qos_name}'s MaxTRESPerUser "
                                 f"gres/gpu={cap} ({SHOW_QOS}) runs {at_once} task(s) of {gpus} GPU(s) at once")
    texts = [(qos.get("MaxSubmitPU", ""), f"QOS {qos_name}'s MaxSubmitJobsPerUser ({SHOW_QOS})",
              lim.queued.get(qos_name, 0)),
             *((a.get("MaxSubmit", ""), f"the association's MaxSubmitJobs ({SHOW_ASSOC})", sum(lim.queued.values()))
               for a in mine)]
    for text, what, queued in texts:
        if text.isdigit():
            room = max(0, int(text) - queued)
            if runs > room:
                shape.submit_at_most = min(room, shape.submit_at_most if shape.submit_at_most is not None else room)
                shape.changes.append(f"{shape.submit_at_most} of {runs} runs submitted now: {what} is {text} and "
                                     f"{queued} of your jobs are queued; launch again as they end for the rest")


def launch_profiles(rows: Sequence[PlanRow], prof: ClusterProfile) -> dict[str, ClusterProfile]:
    """Where each profile of a launch is set (``clusters.<name>``, ``<experiment>.resources``) -> the profile:
    the cluster's own, and each submitted experiment's ``resources:`` on top of it."""
    out = {f"clusters.{prof.name}": prof}
    for r in rows:
        if r.action.submits and r.spec.resources:
            out.setdefault(f"{r.spec.name}.resources", with_resources(prof, r.spec.resources,
                                                                       f"{r.spec.name}.resources"))
    return out


def keep_under(rows: Sequence[PlanRow], at_most: int, why: str) -> int:
    """Let only the first ``at_most`` submitted runs of the plan be submitted (a run whose parent is held back
    is held back too); the others become ``skip: why``. Returns how many were held back."""
    kept, back = 0, set()
    for r in rows:
        if not r.action.submits:
            continue
        if kept < at_most and not any(s.run_dir in back for s in r.after_runs):
            kept += 1
            continue
        r.action = Action(Kind.SKIP, why)
        back.add(r.spec.run_dir)
    return len(back)

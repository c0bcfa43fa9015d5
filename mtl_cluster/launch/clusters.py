"""Cluster profiles: a named mapping in experiments.yaml -> sbatch parameters. The only place that knows
sbatch keys, so a new cluster is a YAML entry, never code.

``sbatch_parameters`` returns the keyword names of submitit's SlurmExecutor (``partition``, ``time``,
``gres``, ``mem``, ``setup``, ``signal_delay_s``...); submit.py hands them to submitit unchanged, and
the --dry-run preview renders them with the same function, so what you see is what is submitted.
"""
from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from ..config import parse_override
from ..errors import ConfigError

EXECUTORS = ("slurm", "local")
# A profile name is a folder under logs/ and part of a jobs/ file name; sbatch option names are words.
PROFILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
SBATCH_OPTION = re.compile(r"^[a-z][a-z0-9-]*$")
MAX_TIMEOUT_MIN = 366 * 24 * 60   # a year: past it Slurm refuses the job or never schedules it


@dataclass(frozen=True)
class ClusterProfile:
    """Where and how the runs of one cluster are executed."""

    name: str = "local"
    executor: str = "slurm"            # slurm | local (this machine, one run after the other)
    data_root: str = "data"            # data.root of every run (not part of the signature)
    data_counts: str = "warn"          # a split far below its release count at launch: warn | refuse | off
    partition: str | None = None
    gres: str | None = None            # e.g. "gpu:1" (the seed's script asks for its GPU by gres)
    gpus_per_node: int | None = None
    cpus_per_task: int | None = None
    mem_gb: float | None = None
    timeout_min: int = 60
    signal_delay_s: int = 120          # USR2 this long before the time limit (the trainer checkpoints)
    max_requeues: int = 3              # submitit's max_num_timeout
    max_array_size: int = 1000         # Slurm's MaxArraySize - 1: bigger arrays are split
    array_parallelism: int = 256       # tasks of one array running at once (%N)
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    exclude: str | None = None
    reservation: str | None = None
    wckey: str | None = None           # none by default (submitit's own default, "submitit", some clusters reject)
    mail_type: str | None = None       # e.g. END,FAIL (MAIL_TYPES)
    mail_user: str | None = None
    setup: tuple[str, ...] = ()        # shell lines before the job (module load CUDA, conda activate...)
    python: str | None = None          # the job's interpreter command (shell, like setup); default: this one
    additional: dict[str, str] = field(default_factory=dict)   # any other #SBATCH --key=value

    @property
    def is_slurm(self) -> bool:
        return self.executor == "slurm"


_TYPES: dict[str, tuple[type, ...]] = {
    "executor": (str,), "data_root": (str,), "data_counts": (str,), "partition": (str,), "gres": (str,),
    "gpus_per_node": (int,),
    "cpus_per_task": (int,), "mem_gb": (int, float), "timeout_min": (int,), "signal_delay_s": (int,),
    "max_requeues": (int,), "max_array_size": (int,), "array_parallelism": (int,), "account": (str,),
    "qos": (str,), "constraint": (str,), "exclude": (str,), "setup": (list,), "additional": (dict,),
    "python": (str,), "reservation": (str,), "wckey": (str,), "mail_type": (str,), "mail_user": (str,),
}
DATA_COUNTS: dict[str, str] = {
    "warn": "mtl-launch warns about a split with far fewer images than its release count (the default: test "
            "and demo copies are small)",
    "refuse": "such a split is a preflight problem: nothing is submitted (--no-preflight overrides)",
    "off": "no count check at launch",
}
"""A profile's ``data_counts``: what the launch preflight does with a partial copy (datacheck.shortfalls)."""
MAIL_TYPES = ("NONE", "BEGIN", "END", "FAIL", "REQUEUE", "ALL", "INVALID_DEPEND", "STAGE_OUT", "TIME_LIMIT",
              "TIME_LIMIT_90", "TIME_LIMIT_80", "TIME_LIMIT_50", "ARRAY_TASKS")
"""sbatch --mail-type's values (Slurm 22.05); a profile's ``mail_type`` is a comma-separated list of them."""
JOB_NAME_MAX = 100   # squeue shows the start; a long name helps nobody and some sites cap it
# What one experiment may ask for itself (``resources:``): the job's size, not where or how it runs.
RESOURCE_KEYS = ("partition", "gres", "gpus_per_node", "cpus_per_task", "mem_gb", "timeout_min",
                 "signal_delay_s", "max_requeues", "account", "qos", "constraint", "exclude", "reservation",
                 "additional")


def profile_from_dict(name: str, raw: object, where: str) -> ClusterProfile:
    """Validate one profile; errors are ``where.key: problem; valid ...`` for the caller to locate."""
    if not isinstance(raw, Mapping):
        raise ConfigError(where=where, problem=f"expected a mapping of profile keys, got {type(raw).__name__}")
    if not PROFILE_NAME.match(name):
        raise ConfigError(where=where, problem=f"{name!r} is not a usable cluster name (letters, digits, _ . + -; "
                                               f"it names a folder under logs/)")
    defaults = {f.name: f.default for f in dataclasses.fields(ClusterProfile) if f.name != "name"}
    unknown = sorted(str(k) for k in raw if k not in _TYPES)
    if unknown:
        valid = ", ".join(f"{k} (default {v!r})" if not isinstance(v, dataclasses._MISSING_TYPE) else k
                          for k, v in sorted(defaults.items()))
        raise ConfigError(where=f"{where}.{unknown[0]}", problem=f"unknown key; valid keys: {valid}")
    kwargs: dict[str, Any] = {"name": name}
    for key, value in raw.items():
        if value is None:
            continue
        if key == "data_counts" and value is False:      # YAML 1.1 reads an unquoted off as false
            value = "off"
        if not isinstance(value, _TYPES[key]) or isinstance(value, bool):
            wanted = " or ".join(t.__name__ for t in _TYPES[key])
            raise ConfigError(where=f"{where}.{key}",
                              problem=f"expected {wanted}, got {type(value).__name__} {value!r}")
        if key == "setup":
            assert isinstance(value, (list, tuple))   # _TYPES["setup"] checked just above
            if not all(isinstance(x, str) for x in value):
                raise ConfigError(where=f"{where}.setup", problem="expected a list of shell lines (strings)")
            value = tuple(value)
        if key == "additional":
            bad = [str(k) for k in value if not SBATCH_OPTION.match(str(k))]
            if bad:
                raise ConfigError(where=f"{where}.additional", problem=f"{bad[0]!r} is not an sbatch option name "
                                  f"(lower-case letters, digits and -, e.g. mail-type)")
            value = {str(k): str(v) for k, v in value.items()}
        kwargs[key] = value
    prof = ClusterProfile(**kwargs)
    if prof.executor not in EXECUTORS:
        raise ConfigError(where=f"{where}.executor", problem=f"{prof.executor!r}; valid: {', '.join(EXECUTORS)}")
    if prof.data_counts not in DATA_COUNTS:
        raise ConfigError(where=f"{where}.data_counts",
                          problem=f"{prof.data_counts!r}; valid: {', '.join(DATA_COUNTS)}")
    for key in ("timeout_min", "max_array_size", "array_parallelism", "gpus_per_node", "cpus_per_task"):
        if getattr(prof, key) is not None and getattr(prof, key) < 1:
            raise ConfigError(where=f"{where}.{key}", problem=f"must be >= 1, got {getattr(prof, key)}")
    if prof.mem_gb is not None and not (math.isfinite(prof.mem_gb) and prof.mem_gb > 0):
        raise ConfigError(where=f"{where}.mem_gb", problem=f"must be a number > 0, got {prof.mem_gb}")
    if prof.timeout_min > MAX_TIMEOUT_MIN:
        raise ConfigError(where=f"{where}.timeout_min",
                          problem=f"must be <= {MAX_TIMEOUT_MIN} (a year), got {prof.timeout_min}")
    for key in ("signal_delay_s", "max_requeues"):
        if getattr(prof, key) < 0:
            raise ConfigError(where=f"{where}.{key}", problem=f"must be >= 0, got {getattr(prof, key)}")
    if prof.mail_type is not None:
        bad = [t for t in prof.mail_type.split(",") if t.strip().upper() not in MAIL_TYPES]
        if bad:
            raise ConfigError(where=f"{where}.mail_type", problem=f"{bad[0].strip()!r} is not a Slurm mail type; "
                                                                  f"valid (comma-separated): {', '.join(MAIL_TYPES)}")
    for key in ("reservation", "wckey", "mail_user"):
        if getattr(prof, key) is not None and not getattr(prof, key).strip():
            raise ConfigError(where=f"{where}.{key}", problem="empty; remove the key or give a value")
    return prof


def job_name(study: str, experiments: list[str]) -> str:
    """``mtl:<study>:<experiment>`` for an array of one experiment, ``mtl:<study>`` for a mixed one: what squeue
    shows. Letters, digits and ``_ . + - :`` only, at most JOB_NAME_MAX characters."""
    parts = ["mtl", study, *(dict.fromkeys(experiments) if len(set(experiments)) == 1 else [])]
    name = ":".join(re.sub(r"[^A-Za-z0-9_.+-]+", "_", p) for p in parts)
    return name[:JOB_NAME_MAX]


def with_resources(prof: ClusterProfile, raw: object, where: str) -> ClusterProfile:
    """``prof`` with one experiment's ``resources:`` on top, validated like a profile."""
    if not isinstance(raw, Mapping):
        raise ConfigError(where=where, problem=f"expected a mapping of resource keys, got {type(raw).__name__}")
    unknown = sorted(str(k) for k in raw if k not in RESOURCE_KEYS)
    if unknown:
        raise ConfigError(where=f"{where}.{unknown[0]}",
                          problem=f"not a per-experiment resource; valid: {', '.join(RESOURCE_KEYS)}")
    merged = {k: getattr(prof, k) for k in _TYPES if getattr(prof, k) is not None}
    merged["setup"] = list(prof.setup)
    merged.update(raw)
    if isinstance(raw.get("additional"), Mapping):     # add to the profile's extra #SBATCH lines
        merged["additional"] = {**prof.additional, **raw["additional"]}
    return profile_from_dict(prof.name, merged, where)


def sbatch_parameters(prof: ClusterProfile, job_name: str, dependency: str | None = None,
                      array_parallelism: int | None = None) -> dict[str, Any]:
    """Keyword arguments for submitit's ``SlurmExecutor.update_parameters`` (sbatch names)."""
    params: dict[str, Any] = {
        "job_name": job_name,
        "time": prof.timeout_min,
        "signal_delay_s": prof.signal_delay_s,
        "array_parallelism": array_parallelism or prof.array_parallelism,
        "stderr_to_stdout": False,
    }
    if prof.mem_gb is not None:
        mem = float(prof.mem_gb)
        params["mem"] = f"{int(mem)}GB" if mem == int(mem) else f"{int(mem * 1024)}MB"
    for key in ("partition", "gres", "gpus_per_node", "cpus_per_task", "account", "qos", "constraint",
                "exclude", "mail_type", "mail_user"):
        if getattr(prof, key) is not None:
            params[key] = getattr(prof, key)
    params["wckey"] = prof.wckey          # None: no --wckey line at all (submitit would write "submitit")
    if prof.setup:
        params["setup"] = list(prof.setup)
    additional = dict(prof.additional)
    if prof.reservation is not None:
        additional.setdefault("reservation", prof.reservation)
    if dependency:
        params["dependency"] = dependency
        # A pretraining run that failed would leave its fine-tune pending forever: drop it instead.
        additional.setdefault("kill-on-invalid-dep", "yes")
    if additional:
        params["additional_parameters"] = additional
    return params


def chunks(n: int, size: int) -> list[range]:
    """Index ranges of at most ``size``: one job array each (Slurm refuses bigger arrays)."""
    return [range(i, min(i + size, n)) for i in range(0, n, size)]


def launch_resources(prof: ClusterProfile, pairs: Sequence[str]) -> dict[str, object]:
    """``mtl-launch --resources KEY=VALUE`` as a ``resources:`` mapping over every run of one launch (e.g. the
    memory ``mtl-status --failures`` proposes for runs killed for it), validated against the profile."""
    out: dict[str, object] = {}
    for text in pairs:
        path, value = parse_override(text, "--resources", "mem_gb=32")
        out[".".join(path)] = value
    if out:
        with_resources(prof, out, "--resources")
    return out

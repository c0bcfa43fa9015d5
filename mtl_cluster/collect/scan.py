"""Run folders -> one pandas DataFrame of finished runs + a list of problems. Reads, never writes, never prints.

A run folder is any folder under the results root holding ``config.yaml`` or ``status.json`` (at any
depth; hidden folders are skipped, run folders are not descended into). Only the run folder contract
is read (``mtl_cluster.rundir``): config.yaml for identity and grouping, status.json for the state,
summary.json for the numbers (data.json only where an old summary lacks "datasets").

Which numbers (``--select``):
- ``best`` (default): per task, the epoch that task's own validation loss chose, and that epoch's
  test-split metrics (summary.json ``selection``, protocol 2 and later). Runs written before protocol 2 have no
  test split: their row is marked and holds the validation split at the epoch of the lowest total
  validation loss (summary.json ``best``), the meaning they were trained with.
- ``last``: the final epoch's test metrics (protocol 1: validation), the no-selection check.
- ``joint``: one epoch per run for all its tasks (``rundir.JOINT_RULE``, from metrics.jsonl), so every number of
  a multitask row comes from one checkpoint a user could deploy.

A run is *counted* when its summary.json holds the selected records and its state is
``completed`` (or its status.json is missing/damaged, which is then reported as a note). Everything
else (running, interrupted, failed, damaged, duplicate copies) is returned as a ``Problem`` so the
caller can list it under the table: nothing is dropped silently, and no bad folder raises. Folders and
files this user may not read (another user's runs, written under umask 077) are listed as ``unreadable``
with the fix; when nothing at all could be read, ``load_runs`` raises ``Unreadable`` naming the first one.

Each record also carries its attempts' environments (``environments``: attempts.jsonl, see ``environments``), which
``mtl_cluster.collect.drift`` audits across a section's runs.

Each record carries its group key (name, protocol and ``config.result_delta``: the result keys that
differ from the signature's base); forming rows from it, and the MTL-vs-STL comparison, live in
``mtl_cluster.collect.compare``.
"""
from __future__ import annotations

import json
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, TypeGuard

import pandas as pd
import yaml

from ..config import result_delta
from ..datasets import DATASETS, SYNTHETIC
from ..errors import ConfigError, Unreadable
from ..rundir import ENV_DATA, JOINT_RULE, SELECT_RULE, RunDir, joint_epoch, read_jsonl
from ..states import State
from ..tasks import METRICS, TASK_METRICS, TASKS, active_tasks, run_metrics
from ..yamlio import MAX_YAML_NODES, expanded_size
from .mounts import on_network_fs

SELECTS = ("best", "last", "joint")
UNREADABLE = "unreadable"   # a Problem's state: this user may not read the folder or a file of it
LAST_RULE = "each run's final epoch (summary.json final), no selection"
RULES = {"best": SELECT_RULE, "last": LAST_RULE, "joint": JOINT_RULE}
METRIC_KEYS: tuple[str, ...] = tuple(m.key for m in METRICS)
# Protocol 1 summaries recorded these per task (age_acc was the 10-group accuracy for age_10_cls_loss runs).
_V1_REQUIRED = {"gender": ("gender_acc",), "smile": ("smile_acc",), "emotion": ("emotion_acc",),
                "age": ("age_acc", "age_mae")}
# ... and, on top, what may differ between a multitask run and its single-task counterpart.
_NOT_COMPARED = {"name", "loss_weights", "age_loss_type", "init_from"}

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml is ~10x faster on 10,000 folders


@dataclass(frozen=True)
class Problem:
    """A run folder that is not (fully) in the table, and why; ``counted`` = its numbers are in anyway."""

    path: str
    state: str
    reason: str
    counted: bool = False


@dataclass
class Runs:
    """What ``load_runs`` found: one DataFrame row per counted run, and every problem."""

    frame: pd.DataFrame
    problems: list[Problem]
    found: int          # run folders seen, counted or not
    select: str
    rule: str           # the epoch-selection rule, as the runs recorded it


def find_run_folders(root: Path) -> list[Path]:
    """Every run folder under ``root`` (root itself included), sorted; unreadable folders are skipped.

    os.scandir and no descent into run folders (checkpoints/...) keep this fast on big studies.
    """
    return walk_run_folders(root)[0]


def walk_run_folders(root: Path) -> tuple[list[Path], list[Path]]:
    """(run folders, folders this user may not list), both sorted: ``find_run_folders`` and what it skipped."""
    found, denied, stack = [], [], [Path(root)]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = list(it)
        except PermissionError:
            denied.append(folder)
            continue
        except OSError:
            continue
        names = {e.name for e in entries}
        if "config.yaml" in names or "status.json" in names:
            found.append(folder)
            continue
        for e in entries:
            try:
                if e.is_dir(follow_symlinks=False) and not e.name.startswith("."):
                    stack.append(Path(e.path))
            except OSError:
                continue
    return sorted(found), sorted(denied)


def permission_fix(path: str) -> str:
    """What to do about a folder or file this user may not read: its owner opens it to the group."""
    return f"permission denied; its owner can run: chmod -R g+rX {path} (or collect as the owner)"


def default_workers(root: Path) -> int:
    """8 reader threads on a network file system (slow answers, not busy ones), 1 on a local disk (where
    parsing holds the GIL and threads only slow it down: 3.2 s vs 4.9 s for 10,000 folders, BENCHMARKS.md)."""
    return 8 if on_network_fs(root) else 1


def load_runs(root: Path, select: str = "best", workers: int | None = None) -> Runs:
    """Scan ``root`` and read every run folder (``workers``: reader threads, default per file system).

    Raises ConfigError when ``root`` is not a folder or ``select`` is unknown; never for a bad run folder; but
    Unreadable when this user may read nothing at all there (every folder or run it met is permission denied).
    """
    root = Path(root)
    if select not in SELECTS:
        raise ConfigError(f"--select {select!r}: unknown; valid: {', '.join(SELECTS)}")
    try:
        exists, is_dir = root.exists(), root.is_dir()
    except PermissionError:   # a folder above it may not be searched
        raise Unreadable(f"{root}: {permission_fix(str(root.parent))}") from None
    if not exists:
        raise ConfigError(f"{root}: no such folder (give the results root, e.g. results/)")
    if not is_dir:
        raise ConfigError(f"{root}: not a folder (give the results root, e.g. results/)")
    folders, denied = walk_run_folders(root)
    jobs = [(f, display_path(root, f), select) for f in folders]
    workers = default_workers(root) if workers is None else workers
    if workers > 1 and len(jobs) > 32:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(_read_run_safely, jobs, chunksize=64))
    else:
        results = [_read_run_safely(j) for j in jobs]
    records = [rec for rec, _ in results if rec is not None]
    problems = [p for _, probs in results for p in probs]
    problems += [Problem(display_path(root, d), UNREADABLE, permission_fix(display_path(root, d))) for d in denied]
    if not records and problems and all(p.state == UNREADABLE for p in problems):
        first = min(problems, key=lambda p: p.path)
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise Unreadable(f"{first.path}: {first.reason}{more}")
    records, dups = _drop_duplicates(records)
    frame = pd.DataFrame.from_records(records, columns=_COLUMNS)
    rule = RULES[select]
    problems = sorted(problems + dups, key=lambda p: p.path)
    return Runs(frame=frame, problems=problems, found=len(folders), select=select, rule=rule)


def display_path(root: Path, folder: Path) -> str:
    """The folder as the user would type it: the root as given on the command line + the relative path.

    Keeps output free of absolute temp paths when the root is relative (goldens, pasted notes).
    """
    rel = Path(os.path.relpath(folder, root))
    return (Path(root) / rel).as_posix() if rel != Path(".") else Path(root).as_posix()


@dataclass(frozen=True, order=True)
class Planted:
    """The answer planted in synthetic runs, for the table's headline: the tasks whose labels one latent sets
    (``data.synthetic_shared``, the first one's cue shows it) and those of them trained on fewer images than
    the rest (``data.synthetic_task_sizes``: the data-poor tasks a multitask row should help)."""

    shared: tuple[str, ...]
    data_poor: tuple[tuple[str, int], ...] = ()


def _planted(synthetic: bool, data_cfg: dict[str, Any]) -> Planted | None:
    """The run's planted answer on synthetic data with ``data.synthetic_shared`` set, else None."""
    shared = data_cfg.get("synthetic_shared")
    if not (synthetic and isinstance(shared, list) and shared):
        return None
    sizes, full = data_cfg.get("synthetic_task_sizes"), data_cfg.get("synthetic_train_size")
    poor = sorted((str(t), n) for t, n in sizes.items() if t in shared and isinstance(n, int)
                  and (not isinstance(full, int) or n < full)) if isinstance(sizes, dict) else []
    return Planted(tuple(str(t) for t in shared), tuple(poor))


# -- one run folder -------------------------------------------------------------------------------
_COLUMNS = ["path", "folder", "signature", "name", "seed", "dataset", "pretrained", "section", "tasks",
            "loss_weights", "age_loss_type", "init_from", "lr_scheduler", "group", "compare", "config", "state",
            "epoch", "epochs",
            "best_rule", "protocol", "synthetic", "planted", "steps", "budget_images", "budget_rule",
            "trainable_params", "environments",
            *METRIC_KEYS,
            *(f"ds_{t}" for t in TASKS), *(f"split_{t}" for t in TASKS), *(f"epoch_{t}" for t in TASKS)]


class _Bad(Exception):
    """One reason a run folder cannot be counted (internal: becomes a Problem)."""

    def __init__(self, state: str, reason: str):
        super().__init__(reason)
        self.state, self.reason = state, reason


def _read_run_safely(job: tuple[Path, str, str]) -> tuple[dict[str, Any] | None, list[Problem]]:
    folder, shown, select = job
    try:
        return _read_run(folder, shown, select)
    except _Bad as bad:
        reason = f"{bad.reason}: {permission_fix(shown)}" if bad.state == UNREADABLE else bad.reason
        return None, [Problem(shown, bad.state, reason)]
    except PermissionError as exc:   # metrics.jsonl, data.json...: the contract files are _load's
        return None, [Problem(shown, UNREADABLE, f"{Path(exc.filename or folder).name}: {permission_fix(shown)}")]
    except Exception as exc:  # noqa: BLE001 - a folder we did not foresee must not stop the others
        return None, [Problem(shown, "damaged", f"unreadable: {type(exc).__name__}: {exc}")]


def _load(path: Path, what: str, parse: Callable[[str], object]) -> dict[str, Any] | None:
    """Parse one contract file; missing -> None; unreadable/invalid -> _Bad('damaged')."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except PermissionError:
        raise _Bad(UNREADABLE, what) from None   # _read_run_safely adds the fix
    except (OSError, UnicodeDecodeError) as exc:
        raise _Bad("damaged", f"{what}: cannot read ({type(exc).__name__})") from None
    try:
        value = parse(text)
    except (ValueError, yaml.YAMLError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise _Bad("damaged", f"{what}: invalid ({first})") from None
    if not isinstance(value, dict):
        raise _Bad("damaged", f"{what}: expected a mapping, got {type(value).__name__}")
    return value


def _parse_yaml(text: str) -> object:
    """config.yaml through the safe loader; aliases (never written by the trainer) must not explode."""
    if "*" in text and expanded_size(yaml.compose(text, Loader=_Loader)) > MAX_YAML_NODES:
        raise ValueError(f"aliases expand to more than {MAX_YAML_NODES} values")
    return yaml.load(text, Loader=_Loader)


def _status(rd: RunDir) -> tuple[dict[str, Any] | None, str | None]:
    """(status, note): a damaged status.json is a note, not a reason to drop finished numbers."""
    try:
        return _load(rd.status_file, "status.json", json.loads), None
    except _Bad as bad:
        return None, bad.reason


def _read_run(folder: Path, shown: str, select: str) -> tuple[dict[str, Any] | None, list[Problem]]:
    rd = RunDir(folder)
    status, note = _status(rd)
    cfg = _load(rd.config_file, "config.yaml", _parse_yaml)
    if cfg is None:
        state = (status or {}).get("state")
        raise _Bad(str(state) if state in (State.RUNNING, State.FAILED) else "damaged", "config.yaml is missing")
    state = (status or {}).get("state")
    if state is not None and state != State.COMPLETED:   # running, interrupted, failed, or a newer word
        raise _Bad(str(state), _state_reason(status or {}))
    summary = _load(rd.summary_file, "summary.json", json.loads)
    if summary is None:
        if status is None:
            raise _Bad("damaged" if note else "not started",
                       note or "no status.json and no summary.json (queued or never started?)")
        raise _Bad("damaged", "status says completed but summary.json is missing")
    rec = _record(folder, shown, cfg, summary, select, rd)
    rec["state"] = state or "unknown"
    problems = []
    if status is None:
        problems.append(Problem(shown, "unknown", f"{note or 'status.json is missing'}; "
                                                  f"summary.json is complete: counted", counted=True))
    return rec, problems


def _state_reason(status: Mapping[str, object]) -> str:
    """A short, human reason from status.json: progress for live runs, the trainer's message otherwise."""
    state = status.get("state")
    parts = []
    if status.get("reason"):
        parts.append(str(status["reason"]))
    if state == State.RUNNING or not parts:
        if status.get("epoch") is not None and status.get("epochs"):
            parts.append(f"epoch {status['epoch']}/{status['epochs']} done")
        if status.get("updated_at"):
            parts.append(f"last update {status['updated_at']}")
    if status.get("attempts"):
        parts.append(f"attempt {status['attempts']}")
    return "; ".join(parts) or "no details in status.json"


def _number(value: object) -> TypeGuard[float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _record(folder: Path, shown: str, cfg: dict[str, Any], summary: dict[str, Any], select: str,
            rd: RunDir) -> dict[str, Any]:
    """One DataFrame row from a parsed config and summary; _Bad('damaged') on anything inconsistent."""
    for key in ("name", "dataset", "loss_weights", "seed"):
        if key not in cfg:
            raise _Bad("damaged", f"config.yaml: no {key!r}")
    weights = cfg["loss_weights"]
    if not isinstance(weights, list) or len(weights) != len(TASKS) or not all(map(_number, weights)):
        raise _Bad("damaged", f"config.yaml: loss_weights {weights!r} is not 4 numbers")
    tasks = active_tasks(weights)
    sig = cfg.get("signature")
    if summary.get("signature") and sig and summary["signature"] != sig:
        raise _Bad("damaged", f"summary.json is for signature {summary['signature']}, config.yaml for {sig}")
    protocol = _protocol(summary)
    age_loss = cfg.get("age_loss_type") if isinstance(cfg.get("age_loss_type"), str) else None
    if protocol >= 2:
        joint = _joint_record(rd, tasks) if select == "joint" else None
        metrics, epochs, splits = _v2_numbers(summary, tasks, age_loss, select, joint)
    else:   # one epoch per run already (the lowest total validation loss): joint takes it as best does
        metrics, epochs, splits = _v1_numbers(summary, tasks, age_loss, "best" if select == "joint" else select)
    datasets = summary.get("datasets")
    if not isinstance(datasets, dict):
        datasets = _datasets_from_data_json(rd)
    pretrained = bool(cfg.get("load_IMDB_WIKI_pretrained_model", False))
    epoch = (summary.get("best_epoch") if select == "best" else
             next(iter(epochs.values()), None) if select == "joint" else summary.get("epochs"))
    budget: dict[str, Any] = summary["budget"] if isinstance(summary.get("budget"), dict) else {}
    data_cfg: dict[str, Any] = cfg["data"] if isinstance(cfg.get("data"), dict) else {}
    synthetic = cfg["dataset"] == SYNTHETIC or data_cfg.get("synthetic") is True
    # One row = the same name and result keys (the signature's difference from its base, so a key added later
    # at its default groups with the runs from before it), seeds apart; another protocol is another row.
    group = {k: v for k, v in result_delta(cfg, keep=("name",)).items() if k != "seed"}
    group["protocol"] = protocol
    compare = {k: v for k, v in group.items() if k not in _NOT_COMPARED}
    return {
        "path": shown, "folder": str(folder), "signature": str(sig or summary.get("signature") or ""),
        "name": str(cfg["name"]), "seed": cfg["seed"], "dataset": str(cfg["dataset"]), "pretrained": pretrained,
        "section": section_of(str(cfg["dataset"]), pretrained), "tasks": tasks, "loss_weights": tuple(weights),
        "age_loss_type": cfg.get("age_loss_type"), "init_from": _text_or_none(cfg.get("init_from")),
        "lr_scheduler": str(cfg.get("lr_scheduler", "plateau")), "group": _key(group), "compare": _key(compare),
        "config": cfg,
        "state": None, "epoch": epoch, "epochs": cfg.get("epoch", summary.get("epochs")),
        "best_rule": summary.get("best_rule") if select == "best" else None,
        "protocol": protocol, "synthetic": synthetic, "planted": _planted(synthetic, data_cfg),
        "steps": budget.get("steps") if _number(budget.get("steps")) else None,
        "budget_images": _key(budget["images"]) if isinstance(budget.get("images"), dict) else None,
        "budget_rule": str(budget.get("rule", "")),
        "trainable_params": summary["trainable_params"] if _number(summary.get("trainable_params")) else None,
        "environments": environments(rd),
        **{m: metrics.get(m, math.nan) for m in METRIC_KEYS},
        **{f"ds_{t}": (str(datasets.get(t)) if datasets.get(t) else "unknown") if t in tasks else None
           for t in TASKS},
        **{f"split_{t}": splits.get(t) for t in TASKS},
        **{f"epoch_{t}": epochs.get(t) for t in TASKS},
    }


def environments(rd: RunDir) -> tuple[dict[str, object], ...]:
    """Each attempt's environment, oldest first, for the drift audit: its ``start`` line's ``env``
    (rundir.ENV_FIELDS) with its ``resume`` line's data keys as ``data <split:task>`` and ``data cache
    <split:task>``, and ``attempt``: its number. Attempts (and runs) from before these records are left out;
    an unreadable attempts.jsonl gives none (the audit is a note, never a reason to drop a run)."""
    try:
        lines = read_jsonl(rd.attempts_file)
    except (OSError, UnicodeDecodeError):
        return ()
    out: list[dict[str, object]] = []
    current: dict[str, object] | None = None
    for rec in lines:
        if rec.get("event") == "start":
            env = rec.get("env")
            current = {**env, "attempt": rec.get("attempt")} if isinstance(env, dict) else None
            if current is not None:
                out.append(current)
        elif rec.get("event") == "resume" and current is not None and rec.get("attempt") == current["attempt"]:
            for field, label in zip(ENV_DATA, ("data", "data cache")):
                keys = rec.get(field)
                if isinstance(keys, dict):
                    current.update({f"{label} {k}": v for k, v in keys.items() if isinstance(v, str)})
    return tuple(out)


def _protocol(summary: Mapping[str, object]) -> int:
    """The evaluation protocol a run was trained under (``config.PROTOCOL``): summary.json says so from protocol 2
    on; a summary without a test-split selection is protocol 1."""
    if "selection" not in summary:
        return 1
    value = summary.get("protocol")
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 2 else 2


Numbers = tuple[dict[str, float], dict[str, Any], dict[str, str]]   # metrics, epoch per task, split per task


def _joint_record(rd: RunDir, tasks: tuple[str, ...]) -> dict[str, Any]:
    """The test record of the epoch rundir.JOINT_RULE picks from the run's metrics.jsonl (_Bad when it cannot)."""
    try:
        history = read_jsonl(rd.metrics_file)
    except (OSError, UnicodeDecodeError):
        raise _Bad("damaged", "metrics.jsonl: cannot read (--select joint reads it)") from None
    epoch = joint_epoch([r for r in history if r.get("split") == "val"], tasks)
    test = [r for r in history if r.get("split") == "test" and r.get("epoch") == epoch]
    if epoch is None or not test:
        raise _Bad("damaged", "metrics.jsonl: no validation and test records to pick the joint epoch from")
    return test[-1]


def _v2_numbers(summary: dict[str, Any], tasks: tuple[str, ...], age_loss: str | None, select: str,
                joint: dict[str, Any] | None = None) -> Numbers:
    """Protocol 2 on: each task's test metrics at the epoch its own validation loss chose, the final one, or
    the joint rule's (``joint``: that epoch's test record)."""
    splits_all = _mapping(summary.get("splits"))
    metrics, epochs, splits = {}, {}, {}
    for t in tasks:
        rec: Any
        if joint is not None:
            rec, epochs[t], where = joint, joint.get("epoch"), f"metrics.jsonl test epoch {joint.get('epoch')}"
        elif select == "best":
            sel = _mapping(_mapping(_mapping(summary.get("selection")).get("tasks")).get(t))
            rec = sel.get("test")
            epochs[t] = sel.get("epoch")
            where = f"selection.tasks.{t}.test"
        else:
            rec = _mapping(summary.get("final")).get("test")
            epochs[t] = summary.get("epochs")
            where = "final.test"
        if not isinstance(rec, dict):
            raise _Bad("damaged", f"summary.json: no {where} record")
        for m in run_metrics((t,), age_loss):
            if not _number(rec.get(m.key)):
                raise _Bad("damaged", f"summary.json: {where} {m.key} is {rec.get(m.key)!r}, not a number")
            metrics[m.key] = float(rec[m.key])
        metrics.update({m.key: float(rec[m.key]) for m in TASK_METRICS[t] if m.optional and _number(rec.get(m.key))})
        splits[t] = str(_mapping(splits_all.get(t)).get("test", "test"))
    return metrics, epochs, splits


def _mapping(value: Any) -> dict[str, Any]:
    """``value`` when it is a mapping, else an empty one: summary.json may be hand-damaged anywhere."""
    return value if isinstance(value, dict) else {}


def _v1_numbers(summary: dict[str, Any], tasks: tuple[str, ...], age_loss: str | None, select: str) -> Numbers:
    """Protocol 1 (no test split): the validation record of the best-total-loss (or final) epoch."""
    which = "best" if select == "best" else "final"
    val = (summary.get(which) or {}).get("val") if isinstance(summary.get(which), dict) else None
    if not isinstance(val, dict):
        raise _Bad("damaged", f"summary.json: no {which} validation record")
    metrics = {}
    for t in tasks:
        for key in _V1_REQUIRED[t]:
            if not _number(val.get(key)):
                raise _Bad("damaged", f"summary.json: {which} validation {key} is {val.get(key)!r}, not a number")
        for m in TASK_METRICS[t]:
            if _number(val.get(m.key)):
                metrics[m.key] = float(val[m.key])
    if "age" in tasks and age_loss == "age_10_cls_loss":     # protocol 1 wrote the group accuracy as age_acc
        metrics["age_group_acc"] = metrics.pop("age_acc")
    epoch = val.get("epoch", summary.get("best_epoch") if which == "best" else summary.get("epochs"))
    splits: dict[str, Any] = summary["eval_splits"] if isinstance(summary.get("eval_splits"), dict) else {}
    return metrics, {t: epoch for t in tasks}, {t: str(splits.get(t, "val")) for t in tasks}


def _datasets_from_data_json(rd: RunDir) -> dict[str, Any]:
    try:
        data = _load(rd.data_file, "data.json", json.loads) or {}
    except _Bad:
        return {}
    return {t: d.get("dataset") for t, d in data.items() if isinstance(d, dict)}


def _text_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def _key(d: dict[str, Any]) -> str:
    return json.dumps(d, sort_keys=True, separators=(",", ":"), default=str)


def section_of(dataset: str, pretrained: bool) -> str:
    """The seed's table a run belongs to: IMDB-WIKI pretraining, or the experiments without/with it."""
    own = DATASETS[dataset].section if dataset in DATASETS else None
    if own is not None:
        return own
    return "pretrained_true" if pretrained else "pretrained_false"


def _drop_duplicates(records: Iterable[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[Problem]]:
    """Copied folders (same signature): keep the first by path, report the others."""
    kept: dict[str, dict[str, Any]] = {}
    out, dups = [], []
    for rec in sorted(records, key=lambda r: r["path"]):
        sig = rec["signature"]
        if sig and sig in kept:
            dups.append(Problem(rec["path"], "duplicate",
                                f"same signature {sig} as {kept[sig]['path']}: counted once"))
            continue
        kept[sig] = rec
        out.append(rec)
    return out, dups

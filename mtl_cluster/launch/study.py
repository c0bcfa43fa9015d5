"""experiments.yaml -> a validated ``Experiments``: defaults, experiments, grid axes, cluster profiles, debug, demo.

Validated once, at load time, so a typo fails in a second on the login node and not after hours in the
queue. Every error is one line ``file:line: yaml.path: problem; valid: ...`` (PyYAML's node marks give
the line). Never imports torch, submitit or rich.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from ..config import RUN_NAME, TrainConfig, build_checked, nested
from ..errors import ConfigError
from ..yamlio import read_text, safe_parse
from .clusters import ClusterProfile, profile_from_dict, with_resources

TOP_KEYS = ("defaults", "experiments", "grid", "clusters", "debug", "demo")
ENTRY_KEYS = ("id", "resources")   # experiment keys beyond the training keys
TRAIN_KEYS = tuple(f.name for f in dataclasses.fields(TrainConfig))
_ID = RUN_NAME                # letters of any script, digits, _ . + -: it may name the run folder


@dataclass(frozen=True)
class Experiment:
    """One entry of ``experiments``: a unique id (default: its name) and its training overrides."""

    id: str
    overrides: dict[str, Any]
    index: int
    resources: dict[str, Any] = field(default_factory=dict)   # its own sbatch sizes (``resources:``)

    @property
    def init_from(self) -> str | None:
        return self.overrides.get("init_from")


@dataclass(frozen=True)
class Experiments:
    """The whole file, validated; ``lines`` maps YAML paths (``experiments[3].init_from``) to line numbers."""

    path: Path
    text: str
    defaults: dict[str, Any]
    experiments: list[Experiment]
    grid: dict[str, list[Any]]
    clusters: dict[str, ClusterProfile]
    debug: dict[str, Any]
    debug_grid: dict[str, list[Any]] | None
    lines: dict[str, int] = field(default_factory=dict, repr=False)
    demo: dict[str, Any] = field(default_factory=dict)         # --demo: applied over ``debug``
    demo_grid: dict[str, list[Any]] | None = None

    def error(self, where: str, problem: str) -> ConfigError:
        """A ConfigError ``file:line: where: problem`` with the line of ``where`` (or its nearest parent)."""
        return _Ctx(self.path, self.lines).error(where, problem)

    def ids(self) -> list[str]:
        return [e.id for e in self.experiments]

    def cluster(self, name: str) -> ClusterProfile:
        """The named cluster profile; unknown names list the valid ones."""
        if name not in self.clusters:
            raise self.error("clusters", f"no cluster {name!r}; valid: {', '.join(sorted(self.clusters)) or '(none)'}")
        return self.clusters[name]


def _line_suffix(lines: Mapping[str, int], where: str) -> str:
    probe = where
    while probe:
        if probe in lines:
            return f":{lines[probe]}"
        cut = max(probe.rfind("."), probe.rfind("["))
        probe = probe[:cut] if cut > 0 else ""
    return ""


def _node_lines(node: yaml.Node, path: str, out: dict[str, int]) -> None:
    """Record the 1-based line of every key and item under ``node``."""
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            sub = f"{path}.{key.value}" if path else str(key.value)
            out.setdefault(sub, key.start_mark.line + 1)
            _node_lines(value, sub, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            sub = f"{path}[{i}]"
            out.setdefault(sub, item.start_mark.line + 1)
            _node_lines(item, sub, out)


def _parse(path: Path, text: str | None = None) -> tuple[str, object, dict[str, int]]:
    text = read_text(path) if text is None else text
    node, raw = safe_parse(path, text)
    lines: dict[str, int] = {}
    if node is not None:
        _node_lines(node, "", lines)
    return text, raw, lines


def _check_train_keys(exp_: _Ctx, where: str, raw: object, extra: tuple[str, ...] = ()) -> dict[str, Any]:
    """Unknown keys and wrong types of a partial training config, reported at their YAML line."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise exp_.error(where, f"expected a mapping of training keys, got {type(raw).__name__}")
    unknown = sorted(str(k) for k in raw if k not in TRAIN_KEYS and k not in extra)
    if unknown:
        raise exp_.error(f"{where}.{unknown[0]}",
                         f"unknown key; valid keys: {', '.join(sorted((*TRAIN_KEYS, *extra)))}")
    try:
        build_checked(TrainConfig, {k: v for k, v in raw.items() if k not in extra}, where)
    except ConfigError as exc:
        raise exp_.error(*exc.parts()) from None
    return dict(raw)


def _check_grid(exp_: _Ctx, where: str, raw: object) -> dict[str, list[object]]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise exp_.error(where, f"expected a mapping axis: [values], got {type(raw).__name__}")
    axes: dict[str, list[object]] = {}
    for key, values in raw.items():
        sub = f"{where}.{key}"
        if str(key).split(".")[0] not in TRAIN_KEYS or str(key) in ("name", "init_from", "init_checkpoint"):
            raise exp_.error(sub, f"unknown grid axis; valid: training keys ({', '.join(TRAIN_KEYS)}), "
                                  f"data.* with a dot")
        if not isinstance(values, list) or not values:
            raise exp_.error(sub, f"expected a non-empty list of values, got {values!r}")
        for i, v in enumerate(values):
            try:
                build_checked(TrainConfig, nested({str(key): v}), "")
            except ConfigError as exc:
                raise exp_.error(f"{sub}[{i}]", exc.parts()[1]) from None
        axes[str(key)] = list(values)
    return axes


@dataclass
class _Ctx:
    path: Path
    lines: dict[str, int]

    def error(self, where: str, problem: str) -> ConfigError:
        """The one place that locates an error in the file: ``file:line: where: problem``."""
        return ConfigError(f"{self.path}{_line_suffix(self.lines, where)}: {where}: {problem}", where=where,
                           problem=problem)


def load_experiments(path: Path, text: str | None = None) -> Experiments:
    """Read and validate experiments.yaml; raises ConfigError (one line, with file and line).

    ``text``: the file's would-be content, validated as if it were ``path`` (``resize.py`` checks an edit
    before it writes it)."""
    path = Path(path)
    text, raw, lines = _parse(path, text)
    ctx = _Ctx(path, lines)
    if not isinstance(raw, Mapping):
        raise ctx.error("(top)", f"expected a mapping with keys {', '.join(TOP_KEYS)}")
    unknown = sorted(str(k) for k in raw if k not in TOP_KEYS)
    if unknown:
        raise ctx.error(unknown[0], f"unknown key; valid: {', '.join(TOP_KEYS)}")
    defaults = _check_train_keys(ctx, "defaults", raw.get("defaults"))
    for key in ("name", "id", "init_from", "init_checkpoint"):
        if key in defaults:
            raise ctx.error(f"defaults.{key}", "belongs to each experiment, not to the defaults")

    entries = raw.get("experiments")
    if not isinstance(entries, list) or not entries:
        raise ctx.error("experiments", "expected a non-empty list of experiments (name + overrides)")
    experiments: list[Experiment] = []
    seen: dict[str, int] = {}
    for i, entry in enumerate(entries):
        where = f"experiments[{i}]"
        over = _check_train_keys(ctx, where, entry, ENTRY_KEYS)
        if not isinstance(over.get("name"), str) or not over["name"]:
            raise ctx.error(where, "every experiment needs a name (the seed's row name, e.g. AlexNet-Gender)")
        exp_id = over.pop("id", None) or over["name"]
        if not isinstance(exp_id, str) or not _ID.match(exp_id):
            raise ctx.error(f"{where}.id" if "id" in entry else f"{where}.name",
                            f"{exp_id!r} is not a usable id (letters, digits, _ . + -)")
        if exp_id in seen:
            raise ctx.error(f"{where}.id" if "id" in entry else f"{where}.name",
                            f"duplicate name {exp_id!r} (also experiments[{seen[exp_id]}]); "
                            f"give one of them a distinct `id:`")
        if "init_checkpoint" in over:
            raise ctx.error(f"{where}.init_checkpoint", "set by the launcher from init_from; name the run instead")
        resources = over.pop("resources", None) or {}
        try:
            with_resources(ClusterProfile(), resources, f"{where}.resources")
        except ConfigError as exc:
            raise ctx.error(*exc.parts()) from None
        seen[exp_id] = i
        experiments.append(Experiment(exp_id, over, i, dict(resources)))

    ids = [e.id for e in experiments]
    for e in experiments:
        if e.init_from is not None and e.init_from not in seen:
            raise ctx.error(f"experiments[{e.index}].init_from",
                            f"names no run {e.init_from!r}; valid: {', '.join(i for i in ids if i != e.id)}")
    _check_cycles(ctx, experiments)

    clusters_raw = raw.get("clusters") or {}
    if not isinstance(clusters_raw, Mapping):
        raise ctx.error("clusters", "expected a mapping name: profile")
    clusters: dict[str, ClusterProfile] = {}
    for name, prof in clusters_raw.items():
        try:
            clusters[str(name)] = profile_from_dict(str(name), prof, f"clusters.{name}")
        except ConfigError as exc:
            raise ctx.error(*exc.parts()) from None

    debug, debug_grid = _overrides(ctx, raw, "debug")
    demo, demo_grid = _overrides(ctx, raw, "demo")
    return Experiments(path, text, defaults, experiments, _check_grid(ctx, "grid", raw.get("grid")),
                       clusters, debug, debug_grid, lines, demo, demo_grid)


def _overrides(ctx: _Ctx, raw: Mapping[str, object],
               section: str) -> tuple[dict[str, Any], dict[str, list[object]] | None]:
    """A ``debug:``/``demo:`` section: training keys for every run (and an optional grid that replaces the
    study's axes); nothing that names one run."""
    section_raw = raw.get(section) or {}
    if not isinstance(section_raw, Mapping):
        raise ctx.error(section, "expected a mapping of training keys (and an optional grid)")
    keys = _check_train_keys(ctx, section, section_raw, ("grid",))
    grid = _check_grid(ctx, f"{section}.grid", keys.pop("grid")) if "grid" in keys else None
    for key in ("name", "init_from", "init_checkpoint"):
        if key in keys:
            raise ctx.error(f"{section}.{key}", "cannot be overridden for the whole grid")
    return keys, grid


def _check_cycles(ctx: _Ctx, experiments: list[Experiment]) -> None:
    """``init_from`` must not loop back (A <- B <- A): nothing could ever start."""
    parent = {e.id: e.init_from for e in experiments}
    index = {e.id: e.index for e in experiments}
    for e in experiments:
        chain, cur = [e.id], e.init_from
        while cur is not None:
            if cur in chain:
                loop = " -> ".join(chain[chain.index(cur):] + [cur])
                raise ctx.error(f"experiments[{index[e.id]}].init_from", f"init_from cycle: {loop}")
            chain.append(cur)
            cur = parent.get(cur)

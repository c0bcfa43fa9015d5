"""Experiments x grid axes -> ordered RunSpecs. Pure: reads no run folder, touches no scheduler.

Each run's config is built in one fixed order, later wins:
defaults -> the experiment's keys -> the grid point -> ``debug`` (with --debug) -> the cluster's data_root
-> ``--set`` overrides. ``init_from: ID`` resolves to the run of experiment ID at the same grid point;
the run gets ``init_checkpoint`` = that run's folder. The list is in dependency order (a pretraining
run before the runs it initialises), then file order, then grid order.
"""
from __future__ import annotations

import copy
import itertools
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Sequence, TypeVar

from ..config import TrainConfig, apply_overrides, build_checked, nested, signature, train_config_from_dict
from ..errors import ConfigError
from ..rundir import default_run_dir
from .study import Experiment, Experiments

V = TypeVar("V")   # a grid axis's values


@dataclass(frozen=True)
class RunSpec:
    """One training run of the grid: what to train and where its folder is."""

    name: str                      # the experiment id (unique in experiments.yaml)
    signature: str
    config: TrainConfig
    run_dir: Path
    init_from: str | None = None   # experiment id of the run this one fine-tunes from
    init_run_dir: Path | None = None
    point: tuple[tuple[str, Any], ...] = ()
    aliases: tuple[str, ...] = ()  # other experiments that resolved to this very run (same folder)
    resources: dict[str, Any] = field(default_factory=dict)   # the experiment's ``resources:``

    @property
    def label(self) -> str:
        """``name`` plus the grid point, e.g. ``AlexNet-Gender seed=1``: unique within a grid."""
        return " ".join([self.name, *(f"{k}={v}" for k, v in self.point)])


def grid_points(axes: Mapping[str, Sequence[V]]) -> list[dict[str, V]]:
    """The cross product of the axes, first axis slowest; no axes -> one empty point."""
    keys = list(axes)
    return [dict(zip(keys, values)) for values in itertools.product(*(axes[k] for k in keys))]


def _merge(base: dict[str, object], over: Mapping[str, object]) -> dict[str, object]:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(mine := out.get(key), dict):
            out[key] = _merge(mine, value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def select(exps: Experiments, only: Sequence[str] | None) -> list[Experiment]:
    """The experiments to expand: all, or ``only`` plus the runs they initialise from; parents first."""
    by_id = {e.id: e for e in exps.experiments}
    if only:
        unknown = [n for n in only if n not in by_id]
        if unknown:
            raise ConfigError(f"--only {unknown[0]}: no such experiment in {exps.path}; "
                              f"valid: {', '.join(by_id)}")
        wanted: set[str] = set()
        for name in only:
            cur: str | None = name
            while cur is not None and cur not in wanted:
                wanted.add(cur)
                cur = by_id[cur].init_from
        chosen = [e for e in exps.experiments if e.id in wanted]
    else:
        chosen = list(exps.experiments)
    ordered: list[Experiment] = []
    done: set[str] = set()

    def visit(e: Experiment) -> None:
        if e.id in done:
            return
        if e.init_from is not None and e.init_from in {c.id for c in chosen}:
            visit(by_id[e.init_from])
        done.add(e.id)
        ordered.append(e)

    for e in chosen:
        visit(e)
    return ordered


def expand(exps: Experiments, results: Path, *, debug: bool = False, only: Sequence[str] | None = None,
           overrides: Sequence[str] = (), data_root: str | None = None, demo: bool = False) -> list[RunSpec]:
    """Every run of the grid, with its resolved config, signature and run folder (absolute).

    ``demo``: the debug grid with the ``demo:`` overrides on top (and its grid, if it has one)."""
    debug = debug or demo
    results = Path(results).expanduser().absolute()
    try:                                        # a bad --set is the command line's fault, not the YAML's
        build_checked(TrainConfig, apply_overrides({}, list(overrides)), "")
    except ConfigError as exc:
        raise ConfigError(f"--set {exc}") from None
    axes = exps.debug_grid if debug and exps.debug_grid is not None else exps.grid
    axes = exps.demo_grid if demo and exps.demo_grid is not None else axes
    points = grid_points(axes)
    specs: list[RunSpec] = []
    by_key: dict[tuple[str, str], int] = {}     # (experiment id, point) -> index in specs
    by_dir: dict[Path, int] = {}
    for exp in select(exps, only):
        for point in points:
            pkey = json.dumps(point, sort_keys=True, default=str)
            raw = _merge(exps.defaults, exp.overrides)
            raw = _merge(raw, nested(point))
            if debug:
                raw = _merge(raw, exps.debug)
            if demo:
                raw = _merge(raw, exps.demo)
            if data_root is not None:
                raw = _merge(raw, {"data": {"root": data_root}})
            raw = apply_overrides(raw, list(overrides))
            parent = None
            if exp.init_from is not None:
                parent = specs[by_key[(exp.init_from, pkey)]]
                raw["init_checkpoint"] = str(parent.run_dir)
            try:
                cfg = train_config_from_dict(raw)
            except ConfigError as exc:
                key, problem = exc.parts()
                where = f"experiments[{exp.index}].{key}" if f"experiments[{exp.index}].{key}" in exps.lines \
                    else f"experiments[{exp.index}]"
                at = f" (grid point {', '.join(f'{k}={v}' for k, v in point.items())})" if point else ""
                raise exps.error(where, f"{key}: {problem}{at}") from None
            run_dir = default_run_dir(results, cfg)
            if run_dir in by_dir:                   # e.g. --debug makes two datasets the same synthetic run
                i = by_dir[run_dir]
                specs[i] = replace(specs[i], aliases=specs[i].aliases + (exp.id,))
                by_key[(exp.id, pkey)] = i
                continue
            by_key[(exp.id, pkey)] = by_dir[run_dir] = len(specs)
            specs.append(RunSpec(exp.id, signature(cfg), cfg, run_dir, exp.init_from,
                                 parent.run_dir if parent else None, tuple(point.items()),
                                 resources=exp.resources))
    return specs


"""Counted runs -> the comparison report: sections, one row per experiment, mean ± std over seeds, and
multitask-minus-single-task deltas with 95% confidence intervals. Pure: no files, no printing.

Grouping: runs whose configs are equal once seed, signature and the keys that never change results
(``config.NON_RESULT_KEYS`` bar ``name``, ``data.root``) are removed form one row. The row's section
comes from the config: dataset IMDB-WIKI -> pretraining; else load_IMDB_WIKI_pretrained_model
False/True (a dataset other than the seed's, e.g. synthetic, gets its own section of that kind).

Delta (MTL - STL): for a multitask row (two or more non-zero loss weights) and each task it trains,
the single-task row of the same section whose only non-zero weight is that task, whose other settings
are equal (name, loss_weights, init_from and age_loss_type aside) and, for age, whose age_loss_type is
equal. The interval is Welch's t interval for a difference of two means (seeds are independent
samples, variances not assumed equal), shown when both sides have at least two seeds.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from .collect import TASK_METRICS, Problem, Runs
from .tasks import AGE_LOSS_TYPES, TASKS

SECTION_ORDER = ("imdb_wiki", "pretrained_false", "pretrained_true")
SECTION_TITLES = {
    "imdb_wiki": "pretrained AlexNet on the IMDB-WIKI dataset",
    "pretrained_false": "experiment results, load_IMDB_WIKI_pretrained_model = False",
    "pretrained_true": "experiment results, load_IMDB_WIKI_pretrained_model = True",
}
SEED_DATASET = {"imdb_wiki": "IMDB-WIKI", "pretrained_false": "CVPR_16_ChaLearn", "pretrained_true": "CVPR_16_ChaLearn"}
METRIC_HEADERS = {"gender_acc": "Gender(%)", "smile_acc": "Smile(%)", "emotion_acc": "Emotion Acc(%)",
                  "age_acc": "Age Acc(%)", "age_mae": "Age MAE "}
LOWER_IS_BETTER = frozenset({"age_mae"})
CI_LEVEL = 0.95


@dataclass
class Cell:
    """One number of the table: mean ± std over n seeds, or a delta with its confidence interval."""

    mean: float
    n: int
    std: float | None = None          # sample std (ddof=1), n > 1 only
    n_stl: int | None = None          # delta cells: seeds on the single-task side
    ci_low: float | None = None       # delta cells: 95% Welch interval, both sides n >= 2
    ci_high: float | None = None


@dataclass
class Row:
    label: str                        # row name + disambiguation, without reference numbers
    kind: str                         # "result" or "delta"
    refs: list[int]                   # reference numbers of the runs behind it (delta: the MTL row's)
    cells: dict[str, Cell]
    tasks: list[str] = field(default_factory=list)
    against: dict[str, str] = field(default_factory=dict)   # delta: metric -> single-task row label


@dataclass
class Column:
    metric: str
    task: str
    header: str                       # e.g. "Gender(%)(ChaLearn_2016)": datasets taken from the runs
    datasets: list[str]


@dataclass
class Reference:
    num: int
    path: str
    epoch: Any
    epochs: Any
    signature: str
    config: str                       # the resolved config on one line, Namespace(...) like the seed


@dataclass
class Section:
    key: str
    title: str
    dataset: str
    columns: list[Column]
    rows: list[Row]
    references: list[Reference]


@dataclass
class Report:
    select: str
    rule: str
    found: int
    counted: int
    sections: list[Section]
    problems: list[Problem]


def build_report(runs: Runs) -> Report:
    """Group, aggregate and compare the counted runs, section by section in the seed's order."""
    df = runs.frame
    sections = []
    if len(df):
        keys = df[["section", "dataset"]].drop_duplicates().itertuples(index=False)
        for sec, dataset in sorted(keys, key=lambda k: (SECTION_ORDER.index(k[0]), k[1] != SEED_DATASET[k[0]], k[1])):
            sections.append(_section(sec, dataset, df[(df["section"] == sec) & (df["dataset"] == dataset)]))
    return Report(select=runs.select, rule=runs.rule, found=runs.found, counted=len(df),
                  sections=sections, problems=list(runs.problems))


def _section(sec: str, dataset: str, df: pd.DataFrame) -> Section:
    title = SECTION_TITLES[sec] + ("" if dataset == SEED_DATASET[sec] else f" (dataset: {dataset})")
    columns = []
    for task in TASKS:
        ds = sorted(set(df[f"ds_{task}"].dropna()))
        if ds:
            for m in TASK_METRICS[task]:
                columns.append(Column(m, task, f"{METRIC_HEADERS[m]}({', '.join(ds)})", ds))
    groups = [g for _, g in df.groupby("group", sort=False)]
    groups.sort(key=_row_order)
    labels = _labels(groups)
    rows, refs, by_group = [], [], {}
    for g, label in zip(groups, labels):
        g = g.sort_values(["seed", "path"], key=lambda s: s.map(_sortable))
        nums = list(range(len(refs) + 1, len(refs) + 1 + len(g)))
        for num, r in zip(nums, g.itertuples(index=False)):
            refs.append(Reference(num, r.path, r.epoch, r.epochs, r.signature, config_line(r.config)))
        tasks = list(g["tasks"].iloc[0])
        cells = {c.metric: _cell(g[c.metric]) for c in columns if c.task in tasks}
        row = Row(label, "result", nums, cells, tasks)
        rows.append(row)
        by_group[id(row)] = g
    rows += _deltas(rows, by_group, columns)
    return Section(sec, title, dataset, columns, rows, refs)


def _sortable(v: Any) -> Any:
    return (0, v, "") if isinstance(v, (int, float)) and not isinstance(v, bool) else (1, 0, str(v))


def _row_order(g: pd.DataFrame) -> tuple:
    """The seed's order: multitask rows first (most tasks first), then single-task rows in task order."""
    r = g.iloc[0]
    tasks = r["tasks"]
    age = r["age_loss_type"] if "age" in tasks else ""
    age_rank = list(AGE_LOSS_TYPES).index(age) if age in AGE_LOSS_TYPES else -1
    return (len(tasks) == 1, -len(tasks), [TASKS.index(t) for t in tasks], age_rank, r["name"], r["group"])


def _labels(groups: list[pd.DataFrame]) -> list[str]:
    """Row names; where two rows share a name, add the config keys that tell them apart."""
    names = [str(g["name"].iloc[0]) for g in groups]
    out = []
    for i, (name, g) in enumerate(zip(names, groups)):
        twins = [groups[j] for j, n in enumerate(names) if n == name and j != i]
        if not twins:
            out.append(name)
            continue
        mine = _flat(g["config"].iloc[0])
        differ = sorted(k for t in twins for k, v in _flat(t["config"].iloc[0]).items()
                        if k not in ("seed", "signature") and mine.get(k) != v)
        keys = sorted(set(differ))
        out.append(f"{name} ({', '.join(f'{k}={mine.get(k)!r}' for k in keys)})" if keys else name)
    return out


def _flat(cfg: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in cfg.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = tuple(v) if isinstance(v, list) else v
    return out


def _cell(values: pd.Series) -> Cell:
    v = values.dropna().to_numpy(dtype=float)
    std = float(np.std(v, ddof=1)) if len(v) > 1 else None
    return Cell(mean=float(np.mean(v)), n=int(len(v)), std=std)


def welch_ci(a: Sequence[float], b: Sequence[float], level: float = CI_LEVEL) -> tuple[float, float] | None:
    """Welch's t interval for mean(a) - mean(b); None unless both sides have at least two values."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a) < 2 or len(b) < 2:
        return None
    d = float(a.mean() - b.mean())
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    if se == 0:
        return d, d
    dof = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    half = float(stats.t.ppf(0.5 + level / 2, dof)) * se
    return d - half, d + half


def _deltas(rows: list[Row], by_group: dict[int, pd.DataFrame], columns: list[Column]) -> list[Row]:
    out = []
    for mtl in (r for r in rows if len(r.tasks) > 1):
        g = by_group[id(mtl)]
        cells, against = {}, {}
        for c in columns:
            if c.task not in mtl.tasks:
                continue
            stl = _counterpart(mtl, c.task, rows, by_group)
            if stl is None:
                continue
            a, b = g[c.metric].dropna().to_numpy(float), by_group[id(stl)][c.metric].dropna().to_numpy(float)
            ci = welch_ci(a, b)
            cells[c.metric] = Cell(mean=float(a.mean() - b.mean()), n=len(a), n_stl=len(b),
                                   ci_low=ci[0] if ci else None, ci_high=ci[1] if ci else None)
            against[c.metric] = stl.label
        if cells:
            out.append(Row(f"Δ {mtl.label} − STL", "delta", mtl.refs, cells, mtl.tasks, against))
    return out


def _counterpart(mtl: Row, task: str, rows: list[Row], by_group: dict[int, pd.DataFrame]) -> Row | None:
    """The first single-task row training only ``task`` with otherwise equal settings (see module doc)."""
    m = by_group[id(mtl)].iloc[0]
    for r in rows:
        if r.tasks != [task]:
            continue
        s = by_group[id(r)].iloc[0]
        if s["compare"] != m["compare"]:
            continue
        if task == "age" and s["age_loss_type"] != m["age_loss_type"]:
            continue
        return r
    return None


def config_line(cfg: dict[str, Any]) -> str:
    """The resolved config on one line, sorted like argparse's Namespace (the seed's reference lines)."""
    return "Namespace(" + ", ".join(f"{k}={_py(cfg[k])}" for k in sorted(cfg)) + ")"


def _py(v: Any) -> str:
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k!r}: {_py(v[k])}" for k in sorted(v)) + "}"
    return repr(v)



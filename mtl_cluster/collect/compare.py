"""Counted runs -> the comparison report: sections, one row per experiment, mean ± std over seeds, and
multitask-minus-single-task deltas with 95% confidence intervals. Pure: no files, no printing.

Grouping: runs with the same name, protocol and result keys (``config.result_delta``: the keys that differ
from the signature's base, so paths, workers and devices never split a row) form one row, seeds apart. The row's section
comes from the config: dataset IMDB-WIKI -> pretraining; else load_IMDB_WIKI_pretrained_model
False/True (a dataset other than the seed's, e.g. synthetic, gets its own section of that kind).

Delta (MTL - STL): for a multitask row (two or more non-zero loss weights) and each task it trains,
the single-task row of the same section whose only non-zero weight is that task, whose other settings
are equal (name, loss_weights, init_from and age_loss_type aside) and, for age, whose age_loss_type is
equal. Both must start from the same place: a fine-tuned pair whose rows fine-tune from different parent
experiments (``init_from``) gets no number, only the reason (``Row.refused``), as a Δ would mix the effect of
the pretraining with that of the fine-tuning. Paired by default (``stat="paired"``): per seed, MTL minus STL at
the same seed, then the mean, a t(n-1) 95% interval and its p over the seeds both rows have; ``stat="welch"``
compares all seeds of each side unpaired. n=1 and zero-variance differences get no interval (never
"significant"). The p-values of a section's Δ cells are Holm-adjusted together (``Cell.p_adjusted``: what
colours a cell), and each paired cell with a spread carries the smallest effect its n seeds detect at 80%
power (``Cell.mde``).

Above the table, a section warns when its rows were trained on different budgets (optimizer steps), and says
so when some rows' learning rates followed their own validation losses (``lr_scheduler: plateau``), and when its
runs ran on different environments (``mtl_cluster.collect.drift``).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..config import PROTOCOL, flatten
from ..datasets import CHALEARN, IMDB_WIKI
from ..tasks import AGE_LOSS_TYPES, METRIC_BY_KEY, TASK_METRICS, TASKS
from . import stats
from .drift import drift_lines
from .scan import Planted, Problem, Runs

SECTION_ORDER = ("imdb_wiki", "pretrained_false", "pretrained_true")
SECTION_TITLES = {
    "imdb_wiki": "pretrained AlexNet on the IMDB-WIKI dataset",
    "pretrained_false": "experiment results, load_IMDB_WIKI_pretrained_model = False",
    "pretrained_true": "experiment results, load_IMDB_WIKI_pretrained_model = True",
}
SEED_DATASET = {"imdb_wiki": IMDB_WIKI, "pretrained_false": CHALEARN, "pretrained_true": CHALEARN}
"""The dataset the seed's table ran each section on (another dataset's section says which)."""
LOWER_IS_BETTER = frozenset(m.key for m in METRIC_BY_KEY.values() if m.lower_is_better)
CI_LEVEL = 0.95
POWER = 0.8                           # the power the table's detectable effects and --seeds-for are stated at
STATS = ("paired", "welch")
# The seed's published table (docs/seed.md, runs of 2019-04-16): section -> row name -> metric -> value.
# Its Age MAE is the argmax one (docs/seed.md), so it sits in the age_mae_argmax column.
PUBLISHED: dict[str, dict[str, dict[str, float]]] = {"pretrained_false": {
    "AlexNet-Gender_Smile_Emotion_Age": {"gender_acc": 84.3, "smile_acc": 85.0, "emotion_acc": 58.3,
                                         "age_mae_argmax": 7.0},
    "AlexNet-Gender": {"gender_acc": 84.2},
    "AlexNet-Smile": {"smile_acc": 86.5},
    "AlexNet-Emotion": {"emotion_acc": 61.3},
    "AlexNet-Age": {"age_mae_argmax": 7.7},
    "AlexNet-Age-100-class-10-classes-crossentropy": {"age_mae_argmax": 6.9},
}}


@dataclass
class Cell:
    """One number of the table: mean ± std over n seeds, or a delta with its confidence interval."""

    mean: float
    n: int
    std: float | None = None          # sample std (ddof=1), n > 1 only
    n_stl: int | None = None          # delta cells: seeds on the single-task side
    ci_low: float | None = None       # delta cells: 95% interval (paired t or Welch), None when there is none
    ci_high: float | None = None
    note: str = ""                    # delta cells: why there is no interval (n=1, zero variance)
    p_value: float | None = None      # delta cells: the paired t test's two-sided p (H0: no difference)
    p_adjusted: float | None = None   # delta cells: Holm-adjusted over the section's Δ cells; colour follows it
    mde: float | None = None          # paired delta cells: smallest |Δ| n seeds detect at POWER (observed spread)


@dataclass
class Row:
    label: str                        # row name + disambiguation, without reference numbers
    kind: str                         # "result", "delta" or "published" (the seed's table, --reference seed)
    refs: list[int]                   # reference numbers of the runs behind it (delta: the MTL row's)
    cells: dict[str, Cell]
    tasks: list[str] = field(default_factory=list)
    against: dict[str, str] = field(default_factory=dict)   # delta: metric -> single-task row label
    refused: dict[str, str] = field(default_factory=dict)   # delta: metric -> why no Δ is computed


@dataclass
class Column:
    metric: str
    task: str
    header: str                       # e.g. "Gender(%)(ChaLearn_2016 VALID)": datasets and reported splits
    datasets: list[str]
    splits: list[str] = field(default_factory=list)


@dataclass
class Reference:
    num: int
    path: str
    epoch: Any
    epochs: Any
    signature: str
    config: str                       # the resolved config on one line, Namespace(...) like the seed
    selected: str = ""                # the epoch(s) behind the numbers, per task where they differ
    budget: str = ""                  # the training budget the run got


@dataclass
class Section:
    key: str
    title: str
    dataset: str
    columns: list[Column]
    rows: list[Row]
    references: list[Reference]
    warnings: list[str] = field(default_factory=list)
    image_tests: list[Any] = field(default_factory=list)   # image_tests.ImageTest, filled by add_image_tests


@dataclass
class Report:
    select: str
    rule: str
    found: int
    counted: int
    sections: list[Section]
    problems: list[Problem]
    stat: str = "paired"
    synthetic: bool = False           # any counted run on synthetic data: the table is a smoke test
    planted: tuple[Planted, ...] = ()   # the counted runs' distinct planted answers (synthetic_shared/_task_sizes)
    protocol_1: bool = False          # some rows are runs from before the test split (their meaning differs)
    protocol_2: bool = False          # some rows are runs from before hold-outs were shared by all tasks
    cost: Any = None                  # cost.CostReport, filled by cost.add_cost (mtl-collect --cost)


def build_report(runs: Runs, stat: str = "paired", reference: str | None = None) -> Report:
    """Group, aggregate and compare the counted runs, section by section in the seed's order.

    ``stat``: the Δ rows' statistics (STATS); ``reference="seed"`` adds the seed's published rows.
    """
    df = runs.frame
    sections = []
    if len(df):
        keys = df[["section", "dataset"]].drop_duplicates().itertuples(index=False)
        for sec, dataset in sorted(keys, key=lambda k: (SECTION_ORDER.index(k[0]), k[1] != SEED_DATASET[k[0]], k[1])):
            part = df[(df["section"] == sec) & (df["dataset"] == dataset)]
            published = PUBLISHED.get(sec, {}) if reference == "seed" and dataset == SEED_DATASET[sec] else {}
            section = _section(sec, dataset, part, stat, published)
            if reference == "seed" and not published:
                section.warnings.append(_no_reference(sec, dataset))
            sections.append(section)
    return Report(select=runs.select, rule=runs.rule, found=runs.found, counted=len(df),
                  sections=sections, problems=list(runs.problems), stat=stat,
                  synthetic=bool(len(df) and df["synthetic"].any()),
                  planted=tuple(sorted({p for p in df["planted"] if p})) if len(df) else (),
                  protocol_1=bool(len(df) and (df["protocol"] == 1).any()),
                  protocol_2=bool(len(df) and (df["protocol"] == 2).any()))


def _no_reference(sec: str, dataset: str) -> str:
    """Why --reference seed added no published rows to a section (said, never silently left out)."""
    if dataset != SEED_DATASET[sec]:
        return (f"--reference seed: no published rows here: the seed's table is for {SEED_DATASET[sec]}, "
                f"this section's runs are on {dataset}.")
    return "--reference seed: the seed's table has no numbers for this section (docs/seed.md)."


def _columns(df: pd.DataFrame) -> list[Column]:
    """Every metric some run of the section has, in the vocabulary's order, headed with data and split."""
    columns = []
    for task in TASKS:
        ds = sorted(set(df[f"ds_{task}"].dropna()))
        if not ds:
            continue
        splits = sorted(set(df[f"split_{task}"].dropna()))
        where = ", ".join(ds) + (f" {'/'.join(splits)}" if splits else "")
        for m in TASK_METRICS[task]:
            if df[m.key].notna().any():
                columns.append(Column(m.key, task, f"{m.header}({where})", ds, splits))
    return columns


def _section(sec: str, dataset: str, df: pd.DataFrame, stat: str,
             published: dict[str, dict[str, float]]) -> Section:
    title = SECTION_TITLES[sec] + ("" if dataset == SEED_DATASET[sec] else f" (dataset: {dataset})")
    columns = _columns(df)
    groups = [g for _, g in df.groupby("group", sort=False)]
    groups.sort(key=_row_order)
    labels = _labels(groups)
    rows: list[Row] = []
    refs: list[Reference] = []
    by_group: dict[int, pd.DataFrame] = {}
    for g, label in zip(groups, labels):
        g = g.sort_values(["seed", "path"], key=lambda s: s.map(_sortable))
        nums = list(range(len(refs) + 1, len(refs) + 1 + len(g)))
        for num, r in zip(nums, g.itertuples(index=False)):
            refs.append(Reference(num, r.path, r.epoch, r.epochs, r.signature, config_line(r.config),
                                  _selected(r), _budget(r)))
        tasks = list(g["tasks"].iloc[0])
        cells = {c.metric: _cell(g[c.metric]) for c in columns if c.task in tasks and g[c.metric].notna().any()}
        row = Row(label, "result", nums, cells, tasks)
        rows.append(row)
        by_group[id(row)] = g
    deltas = _deltas(rows, by_group, columns, stat)
    _adjust(deltas)
    rows += deltas
    rows += _published(rows, published, columns)
    warnings = _budget_warnings(rows, by_group) + _schedule_warnings(rows, by_group) + _drift_warnings(rows, by_group)
    return Section(sec, title, dataset, columns, rows, refs, warnings)


PLATEAU = ("Schedule: {rows} {verb} lr_scheduler plateau (the seed's): each run's learning rate follows its own "
           "validation loss, so a multitask row's rate and its single-task rows' can drop at different epochs and a "
           "Δ partly measures the schedule. lr_scheduler cosine or step depends on the step count only.")


def _schedule_warnings(rows: list[Row], by_group: dict[int, pd.DataFrame]) -> list[str]:
    """A section with a plateau row says that its rows' schedules follow their own validation losses."""
    plateau = [row.label for row in rows if id(row) in by_group
               and (by_group[id(row)]["lr_scheduler"] == "plateau").any()]
    if not plateau:
        return []
    every = len(plateau) == sum(1 for row in rows if id(row) in by_group)
    return [PLATEAU.format(rows="every row" if every else "the rows " + "; ".join(plateau),
                           verb="uses" if every else "use")]


def _drift_warnings(rows: list[Row], by_group: dict[int, pd.DataFrame]) -> list[str]:
    """The section's runs that ran on different software, GPUs or data (``drift.drift_lines``), each named by its
    row and seed."""
    runs = [((row.label, _whole(r.seed)), r.environments) for row in rows if id(row) in by_group
            for r in by_group[id(row)].itertuples(index=False)]
    return drift_lines(runs)


def _adjust(deltas: list[Row]) -> None:
    """Holm over the section's Δ cells with a p (the family a reader scans when colouring): ``p_adjusted``."""
    cells = [c for row in deltas for c in row.cells.values()]
    for cell, adjusted in zip(cells, stats.holm([c.p_value for c in cells])):
        cell.p_adjusted = adjusted


def _selected(r: Any) -> str:
    """``3`` when every task's numbers come from one epoch, else ``gender 3, smile 2``."""
    epochs = {t: _whole(getattr(r, f"epoch_{t}")) for t in r.tasks}
    if len(set(epochs.values())) <= 1:
        return next(iter(epochs.values()), _whole(r.epoch))
    return ", ".join(f"{t} {e}" for t, e in epochs.items())


def _whole(v: Any) -> str:
    """An epoch number as written (pandas stores a column with gaps as floats)."""
    return str(int(v)) if isinstance(v, (int, float)) and not isinstance(v, bool) and float(v).is_integer() else str(v)


def _budget(r: Any) -> str:
    if r.steps is None or (isinstance(r.steps, float) and math.isnan(r.steps)):
        return "budget not recorded (protocol 1)" if r.protocol == 1 else "budget not recorded"
    images = _images(r.budget_images)
    seen = (f", {next(iter(images.values()))} images per task" if len(set(images.values())) == 1 else
            ", images " + " ".join(f"{t} {n}" for t, n in images.items())) if images else ""
    return f"{int(r.steps)} steps{seen}" + (f" ({r.budget_rule})" if r.budget_rule else "")


def _images(text: Any) -> dict[str, int]:
    """The budget's training images per task (stored as a JSON string in the frame)."""
    try:
        value = json.loads(text) if isinstance(text, str) else {}
    except ValueError:
        return {}
    return {str(t): int(n) for t, n in value.items() if isinstance(n, (int, float))} if isinstance(value, dict) else {}


def _budget_warnings(rows: list[Row], by_group: dict[int, pd.DataFrame]) -> list[str]:
    """Rows of one section trained with different step counts, or on different numbers of one task's images,
    are not an equal-budget comparison: say so above the table."""
    steps: dict[str, set[int]] = {}
    images: dict[str, dict[str, set[int]]] = {}       # task -> row -> training images of that task
    for row in rows:
        g = by_group.get(id(row))
        if g is None:
            continue
        for r in g.itertuples(index=False):
            if r.steps is not None and not (isinstance(r.steps, float) and math.isnan(r.steps)):
                steps.setdefault(row.label, set()).add(int(r.steps))
            for t, n in _images(r.budget_images).items():
                images.setdefault(t, {}).setdefault(row.label, set()).add(n)
    out = []
    if len({v for s in steps.values() for v in s}) > 1:
        listed = "; ".join(f"{label}: {'/'.join(map(str, sorted(s)))}" for label, s in steps.items())
        out.append(f"Warning: the rows of this section were trained on different budgets (optimizer steps: "
                   f"{listed}); their differences mix the method with the amount of training.")
    for t, by_row in images.items():
        if len({v for s in by_row.values() for v in s}) > 1 and len({frozenset(s) for s in by_row.values()}) > 1:
            listed = "; ".join(f"{label}: {'/'.join(map(str, sorted(s)))}" for label, s in by_row.items())
            out.append(f"Warning: the rows of this section saw different numbers of {t} training images "
                       f"({listed}).")
    return out


def _published(rows: list[Row], published: dict[str, dict[str, float]], columns: list[Column]) -> list[Row]:
    """The seed's table values as rows of their own (``--reference seed``), next to the measured ones."""
    out = []
    shown = {c.metric for c in columns}
    for name, values in published.items():
        cells = {m: Cell(mean=v, n=1) for m, v in values.items() if m in shown}
        if cells:
            tasks = sorted({METRIC_BY_KEY[m].task for m in cells}, key=TASKS.index)
            out.append(Row(f"{name} (published, seed table)", "published", [], cells, tasks))
    return out


def _sortable(v: Any) -> Any:
    return (0, v, "") if isinstance(v, (int, float)) and not isinstance(v, bool) else (1, 0, str(v))


def _row_order(g: pd.DataFrame) -> tuple:
    """The seed's order: multitask rows first (most tasks first), then single-task rows in task order."""
    r = g.iloc[0]
    tasks = r["tasks"]
    age = r["age_loss_type"] if "age" in tasks else ""
    age_rank = list(AGE_LOSS_TYPES).index(age) if age in AGE_LOSS_TYPES else -1
    return (int(r["protocol"]) != PROTOCOL, len(tasks) == 1, -len(tasks), [TASKS.index(t) for t in tasks], age_rank,
            r["name"], r["group"])


PROTOCOL_1_TAG = " [protocol 1: validation split]"
PROTOCOL_TAGS = {1: PROTOCOL_1_TAG, 2: " [protocol 2: hold-outs per task]"}


def _labels(groups: list[pd.DataFrame]) -> list[str]:
    """Row names; rows of an older protocol are tagged; where two rows still share a name, add the config keys
    that tell them apart (keys both configs have, so a key added later does not name every old row)."""
    names = [str(g["name"].iloc[0]) + PROTOCOL_TAGS.get(int(g["protocol"].iloc[0]), "") for g in groups]
    out = []
    for i, (name, g) in enumerate(zip(names, groups)):
        twins = [groups[j] for j, n in enumerate(names) if n == name and j != i]
        if not twins:
            out.append(name)
            continue
        mine = flatten(g["config"].iloc[0])
        differ = sorted(k for t in twins for k, v in flatten(t["config"].iloc[0]).items()
                        if k not in ("seed", "signature") and k in mine and mine[k] != v)
        keys = sorted(set(differ))
        out.append(f"{name} ({', '.join(f'{k}={mine.get(k)!r}' for k in keys)})" if keys else name)
    return out


def _cell(values: pd.Series) -> Cell:
    v = values.dropna().to_numpy(dtype=float)
    std = float(np.std(v, ddof=1)) if len(v) > 1 else None
    return Cell(mean=float(np.mean(v)), n=int(len(v)), std=std)


def welch_ci(a: Sequence[float], b: Sequence[float], level: float = CI_LEVEL) -> tuple[float, float] | None:
    """Welch's t interval for mean(a) - mean(b); None without one (a side under two values, no variance)."""
    iv = stats.welch(a, b, level)
    return (iv.low, iv.high) if iv.low is not None and iv.high is not None else None


def _delta_cell(g: pd.DataFrame, h: pd.DataFrame, metric: str, stat: str) -> Cell | None:
    """MTL minus STL for one metric: paired over the seeds both rows have, or Welch over all seeds."""
    if stat == "welch":
        a, b = g[metric].dropna().to_numpy(float), h[metric].dropna().to_numpy(float)
        if not len(a) or not len(b):
            return None
        iv = stats.welch(a, b, CI_LEVEL)
        return Cell(mean=iv.mean, n=len(a), n_stl=len(b), ci_low=iv.low, ci_high=iv.high, note=iv.note,
                    p_value=iv.p_value)
    mine = g.dropna(subset=[metric]).groupby("seed")[metric].first()
    theirs = h.dropna(subset=[metric]).groupby("seed")[metric].first()
    seeds = sorted(set(mine.index) & set(theirs.index), key=_sortable)
    if not seeds:
        return None
    diffs = [float(mine[s]) - float(theirs[s]) for s in seeds]
    iv = stats.paired_t(diffs, CI_LEVEL)
    sd = float(np.std(diffs, ddof=1)) if iv.low is not None else None
    return Cell(mean=iv.mean, n=iv.n, std=sd, n_stl=iv.n, ci_low=iv.low, ci_high=iv.high, note=iv.note,
                p_value=iv.p_value, mde=stats.min_detectable_effect(sd, iv.n, POWER, 1 - CI_LEVEL))


def _deltas(rows: list[Row], by_group: dict[int, pd.DataFrame], columns: list[Column], stat: str) -> list[Row]:
    out = []
    for mtl in (r for r in rows if len(r.tasks) > 1):
        g = by_group[id(mtl)]
        cells, against, refused = {}, {}, {}
        for c in columns:
            if c.task not in mtl.tasks:
                continue
            stl = _counterpart(mtl, c.task, rows, by_group)
            if stl is None:
                continue
            why = different_start(g, by_group[id(stl)])
            if why:
                refused[c.metric], against[c.metric] = why, stl.label
                continue
            cell = _delta_cell(g, by_group[id(stl)], c.metric, stat)
            if cell is None:
                continue
            cells[c.metric] = cell
            against[c.metric] = stl.label
        if cells or refused:
            out.append(Row(f"Δ {mtl.label} − STL", "delta", mtl.refs, cells, mtl.tasks, against, refused))
    return out


def different_start(mtl: pd.DataFrame, stl: pd.DataFrame) -> str:
    """Why two rows do not start from the same place (fine-tuned from different parent experiments), or ''."""
    a, b = _parent(mtl), _parent(stl)
    if a == b:
        return ""
    return (f"not computed: the multitask row starts from {a or 'no parent'}, the single-task row from "
            f"{b or 'no parent'} (init_from); a Δ would mix the pretraining's effect with the fine-tuning's")


def _parent(g: pd.DataFrame) -> str | None:
    values = {v for v in g["init_from"] if isinstance(v, str)}
    return "/".join(sorted(values)) if values else None


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



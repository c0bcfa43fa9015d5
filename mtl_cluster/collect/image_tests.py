"""Paired per-image tests on the test split: each Δ cell's multitask and single-task runs, scored on the same
test images (predictions.json). Seeds, not images, are the unit of replication, so seeds are never pooled as if
they were more images: per seed, McNemar (accuracies) or a paired bootstrap (MAE); across seeds, a two-way
bootstrap that resamples seeds and test images together (``stats.crossed_bootstrap``), whose interval does not
narrow when a seed is repeated. The across-seed p-values of a section are Holm-adjusted together.

Seed variance alone (the Δ intervals) ignores that the test set is finite; these tests add it. Reads the
predictions of the runs behind Δ rows only; never writes, never prints.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Hashable

import numpy as np
import pandas as pd

from ..rundir import PREDICTIONS_BY_RULE, RunDir
from ..tasks import AGE_HEADS, METRIC_BY_KEY
from . import stats
from .compare import Report, Row

ACROSS = "two-way bootstrap (seeds x images)"


@dataclass(frozen=True)
class SeedTest:
    """One seed's paired test: McNemar (``p_value``, discordant ``b``/``c``) or a paired bootstrap interval."""

    seed: Any
    images: int
    diff: float
    method: str
    p_value: float | None = None
    low: float | None = None
    high: float | None = None
    note: str = ""


@dataclass(frozen=True)
class ImageTest:
    """One Δ cell tested on the test images: across seeds, the difference (percentage points or years), its
    two-way bootstrap interval and p (Holm-adjusted over the section in ``p_adjusted``); and each seed's own."""

    row: str
    against: str
    metric: str
    seeds: int
    images: int
    diff: float
    method: str
    p_value: float | None = None
    low: float | None = None
    high: float | None = None
    note: str = ""
    p_adjusted: float | None = None
    per_seed: tuple[SeedTest, ...] = ()


def add_image_tests(report: Report, frame: pd.DataFrame, predictions: str = "selected") -> None:
    """Fill ``section.image_tests`` for every Δ row whose runs saved test predictions (``predictions``: which
    epoch's, ``selected`` or ``final``, matching the table's --select)."""
    folders = {str(r.path): (Path(r.folder), r.seed, r.age_loss_type) for r in frame.itertuples(index=False)}
    for sec in report.sections:
        refs = {ref.num: ref.path for ref in sec.references}
        rows = {row.label: row for row in sec.rows if row.kind == "result"}
        tests = []
        for delta in (r for r in sec.rows if r.kind == "delta"):
            mtl = _runs(delta.refs, refs, folders)
            for metric in delta.cells:
                against = delta.against[metric]
                test = _test(delta, metric, against, mtl, _runs(rows[against].refs, refs, folders), predictions)
                if test is not None:
                    tests.append(test)
        adjusted = stats.holm([t.p_value for t in tests])
        sec.image_tests.extend(replace(t, p_adjusted=a) for t, a in zip(tests, adjusted))


Runs = dict[Any, tuple[Path, str | None]]   # seed -> (run folder, age_loss_type)


def _runs(nums: list[int], refs: dict[int, str], folders: dict[str, tuple[Path, Hashable, str | None]]) -> Runs:
    out: Runs = {}
    for num in nums:
        folder, seed, age_loss = folders[refs[num]]
        out.setdefault(seed, (folder, age_loss))
    return out


def _test(delta: Row, metric: str, against: str, mtl: Runs, stl: Runs, which: str) -> ImageTest | None:
    """Each seed both rows have, then all of them together; None when no pair has predictions for the metric."""
    task, field = METRIC_BY_KEY[metric].task, METRIC_BY_KEY[metric].per_image
    if field is None:
        return None
    pairs: dict[Any, tuple[dict[int, float], dict[int, float]]] = {}
    for seed in sorted(set(mtl) & set(stl), key=str):
        a = _values(*mtl[seed], task, metric, field, which)
        b = _values(*stl[seed], task, metric, field, which)
        if a is not None and b is not None and set(a) & set(b):
            pairs[seed] = (a, b)
    if not pairs:
        return None
    per_seed = tuple(_seed_test(seed, a, b, field) for seed, (a, b) in pairs.items())
    common = sorted(set.intersection(*(set(a) & set(b) for a, b in pairs.values())))
    scale = 100.0 if field == "correct" else 1.0          # accuracies in percentage points
    diffs = np.array([[scale * (a[i] - b[i]) for i in common] for a, b in pairs.values()], dtype=float)
    iv = stats.crossed_bootstrap(diffs) if common else None
    if iv is None:
        return ImageTest(delta.label, against, metric, len(pairs), 0, float("nan"), ACROSS,
                         note="no test image common to every seed", per_seed=per_seed)
    return ImageTest(delta.label, against, metric, len(pairs), len(common), iv.mean, ACROSS, p_value=iv.p_value,
                     low=iv.low, high=iv.high, note=iv.note, per_seed=per_seed)


def _seed_test(seed: Hashable, a: dict[int, float], b: dict[int, float], field: str) -> SeedTest:
    common = sorted(set(a) & set(b))
    x, y = [a[i] for i in common], [b[i] for i in common]
    if field == "correct":
        mc = stats.mcnemar([bool(v) for v in x], [bool(v) for v in y])
        return SeedTest(seed, mc.n, mc.diff, f"McNemar ({mc.method})", p_value=mc.p_value,
                        note=f"b={mc.b} c={mc.c}" + (f"; {mc.note}" if mc.note else ""))
    iv = stats.paired_bootstrap(x, y)
    return SeedTest(seed, iv.n, iv.mean, iv.method, low=iv.low, high=iv.high, note=iv.note)


def _values(folder: Path, age_loss: str | None, task: str, metric: str, field: str,
            which: str) -> dict[int, float] | None:
    """sample index -> per-image value of one run, or None (no file, damaged, or another head's result)."""
    needs = METRIC_BY_KEY[metric].needs
    if needs is not None and AGE_HEADS.get(age_loss or "age_cls_loss", ("age",))[0] != needs:
        return None                          # "correct" holds the age head's first output's accuracy only
    try:
        preds = json.loads(RunDir(folder).predictions_file.read_text(encoding="utf-8"))
        part = preds[task] if which == "selected" else preds[PREDICTIONS_BY_RULE][which][task]
        index, raw = part["index"], part[field]
        values = [int(c) for c in raw] if field == "correct" else [float(v) for v in raw]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if len(index) != len(values):
        return None
    return dict(zip(map(int, index), values))


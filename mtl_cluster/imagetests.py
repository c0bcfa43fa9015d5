"""Paired per-image tests on the test split: each Δ cell's multitask and single-task runs, scored on the
same test images (predictions.json), seeds pooled. McNemar for accuracies, a paired bootstrap for MAE.

Seed variance alone (the Δ intervals) ignores that the test set is finite; these tests use it. Reads the
predictions of the runs behind Δ rows only; never writes, never prints.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from . import stats
from .compare import Report, Row
from .rundir import RunDir
from .tasks import AGE_HEADS, METRIC_BY_KEY


@dataclass(frozen=True)
class ImageTest:
    """One Δ cell tested on the test images: the difference (percentage points or years), its interval or
    p-value, and how many seeds and image pairs went in."""

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


def add_image_tests(report: Report, frame: pd.DataFrame) -> None:
    """Fill ``section.image_tests`` for every Δ row whose runs saved test predictions."""
    folders = {str(r.path): (Path(r.folder), r.seed, r.age_loss_type) for r in frame.itertuples(index=False)}
    for sec in report.sections:
        refs = {ref.num: ref.path for ref in sec.references}
        rows = {row.label: row for row in sec.rows if row.kind == "result"}
        for delta in (r for r in sec.rows if r.kind == "delta"):
            mtl = _runs(delta.refs, refs, folders)
            for metric, against in delta.against.items():
                test = _test(delta, metric, against, mtl, _runs(rows[against].refs, refs, folders))
                if test is not None:
                    sec.image_tests.append(test)


Runs = dict[Any, tuple[Path, str | None]]   # seed -> (run folder, age_loss_type)


def _runs(nums: list[int], refs: dict[int, str], folders: dict[str, tuple[Path, Any, Any]]) -> Runs:
    out: Runs = {}
    for num in nums:
        folder, seed, age_loss = folders[refs[num]]
        out.setdefault(seed, (folder, age_loss))
    return out


def _test(delta: Row, metric: str, against: str, mtl: Runs, stl: Runs) -> ImageTest | None:
    """Pool the seeds both rows have; None when no pair has predictions for the metric."""
    task, field = METRIC_BY_KEY[metric].task, METRIC_BY_KEY[metric].per_image
    if field is None:
        return None
    a_all, b_all, seeds = [], [], 0
    for seed in sorted(set(mtl) & set(stl), key=str):
        pair = [_values(*mtl[seed], task, metric, field), _values(*stl[seed], task, metric, field)]
        if pair[0] is None or pair[1] is None:
            continue
        common = sorted(set(pair[0]) & set(pair[1]))
        a_all += [pair[0][i] for i in common]
        b_all += [pair[1][i] for i in common]
        seeds += 1
    if not seeds:
        return None
    name = delta.label
    if field == "correct":
        mc = stats.mcnemar([bool(v) for v in a_all], [bool(v) for v in b_all])
        return ImageTest(name, against, metric, seeds, mc.n, mc.diff, f"McNemar ({mc.method})", p_value=mc.p_value,
                         note=f"b={mc.b} c={mc.c}" + (f"; {mc.note}" if mc.note else ""))
    iv = stats.paired_bootstrap(a_all, b_all)
    return ImageTest(name, against, metric, seeds, iv.n, iv.mean, iv.method, low=iv.low, high=iv.high, note=iv.note)


def _values(folder: Path, age_loss: str | None, task: str, metric: str, field: str) -> dict[int, float] | None:
    """sample index -> per-image value of one run, or None (no file, damaged, or another head's result)."""
    needs = METRIC_BY_KEY[metric].needs
    if needs is not None and AGE_HEADS.get(age_loss or "age_cls_loss", ("age",))[0] != needs:
        return None                          # "correct" holds the age head's first output's accuracy only
    try:
        preds = json.loads(RunDir(folder).predictions_file.read_text(encoding="utf-8"))
        part = preds[task]
        index, raw = part["index"], part[field]
        values = [int(c) for c in raw] if field == "correct" else [float(v) for v in raw]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if len(index) != len(values):
        return None
    return dict(zip(map(int, index), values))

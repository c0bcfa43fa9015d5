"""The drift audit: the runs a section compares should differ in their config only, not in what they ran on.

Every attempt records its environment in attempts.jsonl (``rundir.ENV_FIELDS``: Python, torch, torchvision,
CUDA, cuDNN, GPU model, driver, the package's git commit and a hash of any uncommitted diff; and per split the
data it read: ``rundir.ENV_DATA``, as ``scan.environments`` gathers them). Where a section's runs, or the
attempts within one run (a requeue that landed on another GPU model, torch upgraded mid-study, a dirty tree),
hold more than one value of a field, the section gets one ``Drift:`` line per field above its table, naming
the runs of each value (at most MAX_NAMED, then "and N more").

Not compared: the host (the nodes of a cluster differ legitimately; the GPU model and driver say what matters
of them). Data keys are compared split by split, and only between the runs that trained that split (a
single-task run reads one task's data, a multitask run four). Runs without records (from before them) are not
flagged; when some runs of a section have records and some do not, one line says for how many the environment
is not recorded. Pure: no files, no printing.
"""
from __future__ import annotations

from typing import Any, Sequence

from ..rundir import ENV_FIELDS

MAX_NAMED = 3
LABELS = {f.key: f.label for f in ENV_FIELDS if f.drift}
SHORT = {"git_commit": 10, "git_diff": 12}          # hashes: enough characters to tell them apart
NONE = {"git_diff": "clean", "gpu": "none (CPU)"}    # what a null value means, per field

Name = tuple[str, str]                               # (the run's row as the table labels it, its seed)
Run = tuple[Name, Sequence[dict[str, Any]]]          # a run and its attempts' environments, oldest first


def drift_lines(runs: Sequence[Run]) -> list[str]:
    """The section's drift warnings (empty when every recorded run ran on the same environment). A split's cache
    key is compared only where its data identity agrees (the identity hashes names and labels, the cache key
    the files' content too): one line per changed split, not two."""
    recorded = [(name, envs) for name, envs in runs if envs]
    if not recorded:
        return []
    splits = sorted({k[len("data "):] for _, envs in recorded for env in envs for k in env if k.startswith("data ")
                     and not k.startswith("data cache ")})
    out = [line for key in LABELS if (line := _field_line(key, recorded))]
    for split in splits:
        line = _field_line(f"data {split}", recorded) or _field_line(f"data cache {split}", recorded)
        out += [line] if line else []
    missing = [name for name, envs in runs if not envs]
    if missing:
        n = len(missing)
        out.append(f"Drift: environment not recorded for {n} run{'s' * (n != 1)} ({_names(missing)}); "
                   f"{'it is' if n == 1 else 'they are'} not audited.")
    return out


def _field_line(key: str, runs: Sequence[Run]) -> str | None:
    """``Drift: torch 2.14.1 in 3 runs (...), 2.15.0 in 1 (...)``, or None when the field agrees."""
    by_value: dict[str, list[Name]] = {}
    changed = []
    for name, envs in runs:
        values = list(dict.fromkeys(_shown(key, env.get(key)) for env in envs if key in env))
        for v in values:
            by_value.setdefault(v, []).append(name)
        if len(values) > 1:
            changed.append(name)
    if len(by_value) < 2:
        return None
    ordered = sorted(by_value.items(), key=lambda kv: -len(kv[1]))     # stable: first seen first among equals
    parts = []
    for i, (value, names) in enumerate(ordered):
        count = f"{len(names)} run{'s' * (len(names) != 1)}" if i == 0 else str(len(names))
        parts.append(f"{value} in {count} ({_names(names)})")
    line = f"Drift: {LABELS.get(key, key)} {', '.join(parts)}"
    if changed:
        line += f"; changed between the attempts of {_names(changed)}"
    return line + "."


def _shown(key: str, value: Any) -> str:
    if value is None:
        return NONE.get(key, "none")
    text = str(value)
    return text[:SHORT[key]] if key in SHORT else text


def _names(names: Sequence[Name]) -> str:
    """``AlexNet-Age seeds 0, 1, AlexNet-Gender seed 2 and 4 more``: MAX_NAMED runs, a row's seeds together."""
    rows: dict[str, list[str]] = {}
    for row, seed in names[:MAX_NAMED]:
        rows.setdefault(row, []).append(seed)
    more = len(names) - MAX_NAMED
    return ", ".join(f"{row} seed{'s' * (len(seeds) > 1)} {', '.join(seeds)}" for row, seeds in rows.items()) + (
        f" and {more} more" if more > 0 else "")

"""What a dataset copy holds, per dataset and split, beside the counts the release has (datacheck/official.py):
``mtl-data check`` and the launch preflight, so a wrong or partial copy is caught before the first job.

Two depths. ``count_part`` lists folders and reads label files only (count.py: one stat per image,
no decoding: seconds for 100k files); ``check`` adds decoding through the trainer's own decoder, of an
evenly spread sample of each split by default or of every image with ``full``. The loaders' own readers
list and parse, so what is counted is what a run would train on. Loaders are imported inside functions:
launch/plan.py imports this module and mtl-launch starts without numpy or PIL.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from ..config import DataConfig
from ..datasets import SOURCES, source_key
from ..errors import ConfigError, DataError
from .count import REFERENCE_KEYS, Counted, Part, count, parts_named
from .official import PARTIAL_BELOW, REFERENCES, Reference

SAMPLE = 100            # images decoded per split by default (evenly spread); full=True decodes all
LISTED = 20             # unreadable files named per split (the rest are counted)
Progress = Callable[[str, int, int], None]    # (what, done, total) while decoding


@dataclass
class SplitReport:
    """One split of one copy: what was found, its labels, what could not be read, and the reference count."""

    split: str
    found: int                                  # the number compared with the reference (images; .mat: rows)
    images: int                                 # usable labelled images (what a run trains on)
    labels: dict[str, dict[str, int]]           # task -> label (class, emotion, age decade) -> images
    empty: int = 0                              # zero-byte files: what an interrupted copy leaves
    left_out: int = 0                           # entries the loader drops (unparsable names, gt rows without
    #                                             an image, .mat rows its cleaning removes)
    expected: int | None = None
    checked: int = 0                            # images decoded
    unreadable: int = 0
    unreadable_files: list[str] = field(default_factory=list)   # "path: reason", the first LISTED

    def problems(self, where: str) -> list[str]:
        out = []
        if self.expected is not None and self.found != self.expected:
            what = "fewer" if self.found < self.expected else "more"
            out.append(f"{where} {self.split}: {self.found:,} found, {what} than the reference's "
                       f"{self.expected:,}: a partial or wrong copy")
        if self.empty:
            out.append(f"{where} {self.split}: {self.empty:,} zero-byte file(s) (an interrupted copy?)")
        if self.unreadable:
            out.append(f"{where} {self.split}: {self.unreadable:,} of {self.checked:,} decoded image(s) unreadable")
        return out


@dataclass
class PartReport:
    part: Part
    splits: list[SplitReport] = field(default_factory=list)
    reference: Reference | None = None
    error: str | None = None                    # the copy cannot be read as its layout (a DataError's line)

    def problems(self) -> list[str]:
        where = f"{self.part.name} ({self.part.path})"
        out = [f"{where}: {self.error}"] if self.error else []
        return out + [p for s in self.splits for p in s.problems(self.part.name)]


@dataclass
class DataReport:
    """Every checked copy; ``absent``: copies looked for under a data root and not there (not a problem)."""

    parts: list[PartReport]
    absent: list[Part] = field(default_factory=list)
    full: bool = False

    def problems(self) -> list[str]:
        return [p for part in self.parts for p in part.problems()]

    @property
    def ok(self) -> bool:
        return not self.problems()

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe, for ``mtl-data check --json`` and scripts."""
        return {"ok": self.ok, "full": self.full, "problems": self.problems(),
                "absent": [{"dataset": p.dataset, "name": p.name, "path": str(p.path)} for p in self.absent],
                "parts": [{"dataset": r.part.dataset, "name": r.part.name, "layout": r.part.layout,
                           "path": str(r.part.path), "error": r.error,
                           "reference": r.reference.source if r.reference else None,
                           "splits": [vars(s) for s in r.splits]} for r in self.parts]}


# -- which copies -----------------------------------------------------------------------------------
def dataset_key(name: str) -> str:
    """``chalearn``/``CVPR_16_ChaLearn``, ``fer2013``, ``imdb-wiki``/``IMDB-WIKI`` -> a datasets.SOURCES key."""
    key = source_key(name)
    if key is None:
        raise ConfigError(f"--dataset {name!r}: unknown dataset; valid: {', '.join(SOURCES)}")
    return key


def parts_under(data: DataConfig, datasets: Sequence[str] = ()) -> tuple[list[Part], list[Part]]:
    """(copies to check, copies absent) under ``data.root``: every layout the data keys name. Without
    ``datasets`` the absent ones are skipped (a root may hold one dataset only), but a root with none of
    them is a DataError; a dataset named in ``datasets`` is checked, and reported, even when absent."""
    root = Path(data.root).expanduser()
    if not root.is_dir():
        raise DataError(f"data root {root} does not exist or is not a folder (give --data-root DIR, or the "
                        f"cluster profile's data_root)")
    parts = parts_named(data, [dataset_key(n) for n in datasets] or list(SOURCES))
    if datasets:
        return parts, []
    present = [p for p in parts if p.path.exists()]
    if not present:
        raise DataError(f"no dataset found under {root}: looked for " + ", ".join(str(p.path) for p in parts)
                        + " (check the root, or the data.* keys with --set)")
    return present, [p for p in parts if p not in present]


def load_expectations(path: Path) -> dict[str, Reference]:
    """An --expect YAML ``{copy: {split: count}}`` (e.g. a lab's own cleaned IMDB-WIKI tree) as References."""
    from ..yamlio import load_yaml_mapping

    out: dict[str, Reference] = {}
    for key, counts in load_yaml_mapping(path).items():
        if key not in REFERENCE_KEYS:
            raise ConfigError(f"{path}: {key}: unknown copy; valid: {', '.join(REFERENCE_KEYS)}")
        if not isinstance(counts, Mapping) or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0
                                                      for v in counts.values()):
            raise ConfigError(f"{path}: {key}: expected a mapping split: count (integers >= 0), got {counts!r}")
        out[str(key)] = Reference({str(k): v for k, v in counts.items()}, "images", str(path))
    return out


# -- counting (no decoding) -------------------------------------------------------------------------
def _split_report(s: Counted, ref: Reference | None) -> SplitReport:
    return SplitReport(split=s.name, found=len(s.paths) if s.found is None else s.found,
                       images=len(s.paths) if s.images is None else s.images,
                       labels={t: dict(c) for t, c in s.labels.items()}, empty=s.empty, left_out=s.left_out,
                       expected=ref.counts.get(s.name) if ref else None)


def count_part(part: Part, references: Mapping[str, Reference] = REFERENCES) -> PartReport:
    """Counts and label histograms of one copy, nothing decoded; a copy its loader cannot read has ``error``."""
    ref = references.get(part.reference_key)
    try:
        return PartReport(part, [_split_report(s, ref) for s in count(part)], ref)
    except DataError as exc:
        return PartReport(part, [], ref, str(exc))


# -- decoding ---------------------------------------------------------------------------------------
def spread(n: int, k: int) -> list[int]:
    """``k`` indices spread evenly over ``range(n)``, first and last included (all of them if n <= k)."""
    if n <= k:
        return list(range(n))
    return sorted({round(i * (n - 1) / (k - 1)) for i in range(k)}) if k > 1 else [0]


def _unreadable(paths: Sequence[Path], label: str, progress: Progress | None) -> list[str]:
    """``path: reason`` for each image the trainer's decoder (FileImages.image) refuses."""
    from ..train.data.base import UNREADABLE, FileImages

    images = FileImages(paths, [0.0] * len(paths))

    def one(i: int) -> str | None:
        try:
            images.image(i)
        except UNREADABLE as exc:
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            return f"{paths[i]}: {reason}"
        return None

    bad: list[str] = []
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:   # PIL decodes without the GIL
        for done, result in enumerate(pool.map(one, range(len(paths))), start=1):
            if result:
                bad.append(result)
            if progress and (done % 256 == 0 or done == len(paths)):
                progress(label, done, len(paths))
    return bad


def _fer_pixels(part: Part) -> str | None:
    """FER2013's images are rows of its file: the loader's full parse, whose first bad row is the problem."""
    from ..train.data.fer2013 import read_fer2013_csv, read_fer2013_h5

    try:
        (read_fer2013_csv if part.layout == "csv" else read_fer2013_h5)(part.path)
    except DataError as exc:
        return f"pixels not readable by the loader: {exc}"
    return None


def check_part(part: Part, *, full: bool = False, sample: int = SAMPLE,
               references: Mapping[str, Reference] = REFERENCES, progress: Progress | None = None) -> PartReport:
    """``count_part`` plus decoding: ``sample`` images per split spread evenly, or all with ``full``."""
    ref = references.get(part.reference_key)
    try:
        splits = count(part)
    except DataError as exc:
        return PartReport(part, [], ref, str(exc))
    report = PartReport(part, [_split_report(s, ref) for s in splits], ref)
    if part.layout in ("csv", "h5"):               # one file: the loader's parse decodes every row
        report.error = _fer_pixels(part)
        for rep in report.splits:
            rep.checked = 0 if report.error else rep.found
        return report
    for s, rep in zip(splits, report.splits):
        chosen = [s.paths[i] for i in (range(len(s.paths)) if full else spread(len(s.paths), sample))]
        bad = _unreadable(chosen, f"{part.name} {s.name}", progress)
        rep.checked, rep.unreadable, rep.unreadable_files = len(chosen), len(bad), bad[:LISTED]
    return report


def check(parts: Iterable[Part], *, full: bool = False, sample: int = SAMPLE,
          references: Mapping[str, Reference] = REFERENCES, absent: Sequence[Part] = (),
          progress: Progress | None = None) -> DataReport:
    """Every copy counted, its labels histogrammed and its images decoded (a sample, or all with ``full``)."""
    return DataReport([check_part(p, full=full, sample=sample, references=references, progress=progress)
                       for p in parts], list(absent), full)


# -- the preflight's cheap part ---------------------------------------------------------------------
def shortfalls(parts: Iterable[Part], references: Mapping[str, Reference] = REFERENCES) -> list[str]:
    """Splits with fewer than PARTIAL_BELOW of their reference count: a partial copy, found by counting only.

    Copies without a reference, absent or unreadable ones (the loader reports those) and .mat files (the
    whole struct must be read to count its rows) are left to ``mtl-data check``.
    """
    out = []
    for part in parts:
        if part.reference_key not in references or part.layout == "mat" or not part.path.exists():
            continue
        report = count_part(part, references)
        for s in report.splits:
            if s.expected and s.found < PARTIAL_BELOW * s.expected:
                out.append(f"{part.name} {s.split} at {part.path}: {s.found:,} images, "
                           f"{100 * s.found / s.expected:.0f}% of the {s.expected:,} in "
                           f"{report.reference.source if report.reference else 'the reference'}: a partial or "
                           f"wrong copy (mtl-data check shows what is there)")
    return out

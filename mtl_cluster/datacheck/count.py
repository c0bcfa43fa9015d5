"""Which dataset copies a config names (``Part``), and counting one copy's splits: folders listed and label
files read by the loaders' own readers, nothing decoded. The part of ``mtl-data check`` the launch preflight
can afford; check.py adds decoding, the reports and the reference counts.

Loaders are imported inside functions: launch/plan.py imports this module, and mtl-launch starts without numpy/PIL.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from ..config import DataConfig, TrainConfig
from ..datasets import SOURCES, source_of
from ..errors import DataError
from ..tasks import AGE_GROUPS, EMOTIONS


@dataclass(frozen=True)
class Part:
    """One dataset copy a run reads: which dataset, in which layout (the loader's), for which task, where."""

    dataset: str        # a datasets.SOURCES key
    layout: str         # imagefolder | official | csv | h5 | aligned | mat
    path: Path
    task: str = ""      # ChaLearn imagefolder: the task whose class folders these are

    @property
    def name(self) -> str:
        return {"imagefolder": f"ChaLearn {self.task}", "official": "ChaLearn age (official release)",
                "aligned": "IMDB-WIKI (aligned)", "mat": f"IMDB-WIKI {self.path.name}"}.get(self.layout, "FER2013")

    @property
    def reference_key(self) -> str:
        """Its key in official.REFERENCES (or an --expect file), present there or not."""
        return {"imagefolder": f"chalearn_{self.task}", "official": "chalearn_official", "aligned": "imdb_wiki_aligned",
                "mat": self.path.name.lower()}.get(self.layout, "fer2013")


REFERENCE_KEYS = ("chalearn_gender", "chalearn_smile", "chalearn_age", "chalearn_official", "fer2013",
                  "imdb_wiki_aligned", "imdb.mat", "wiki.mat")
"""Every ``Part.reference_key``: the copies a reference count (official.py or --expect) can name."""


def _chalearn(d: DataConfig, task: str) -> Part:
    if d.chalearn_layout == "official":
        return Part("chalearn", "official", d.path(d.chalearn_official), "age")
    return Part("chalearn", "imagefolder", d.path(getattr(d, f"chalearn_{task}")), task)


def _fer(d: DataConfig) -> Part:
    path = d.path(d.fer2013)
    return Part("fer2013", "csv" if path.suffix.lower() == ".csv" else "h5", path)


def _imdb_wiki(d: DataConfig) -> Part:
    if d.imdb_wiki_layout == "mat":
        return Part("imdb-wiki", "mat", d.path(d.imdb_wiki_mat))
    return Part("imdb-wiki", "aligned", d.path(d.imdb_wiki))


_PART_OF: dict[str, Callable[[DataConfig, str], Part]] = {
    "chalearn": _chalearn, "fer2013": lambda d, task: _fer(d), "imdb-wiki": lambda d, task: _imdb_wiki(d)}
"""The copy a source's task reads, per datasets.SOURCES key."""


def parts_of(cfg: TrainConfig) -> list[Part]:
    """The copies one run reads (none for synthetic data): the active tasks' only, routed by the registry."""
    sources = [(source_of(cfg.dataset, task, cfg.data.synthetic), task) for task in cfg.active_tasks]
    return list(dict.fromkeys(_PART_OF[source](cfg.data, task) for source, task in sources if source is not None))


def parts_named(data: DataConfig, sources: Sequence[str]) -> list[Part]:
    """Every copy of these datasets.SOURCES keys that the data keys name (all three ChaLearn tasks)."""
    return list(dict.fromkeys(_PART_OF[key](data, task) for key in SOURCES if key in sources
                              for task in SOURCES[key].tasks))


@dataclass
class Counted:
    """One split of a copy as counted: its usable images, label histograms and what the loader leaves out."""

    name: str
    paths: list[Path]                   # the usable images (what decoding checks)
    labels: dict[str, Counter]
    empty: int = 0
    left_out: int = 0
    found: int | None = None            # compared with the reference; default: len(paths)
    images: int | None = None           # usable images; default: len(paths)


def decade(age: float) -> str:
    group = min(max(int(age), 0) // 10, AGE_GROUPS - 1)
    return f"{group * 10}+" if group == AGE_GROUPS - 1 else f"{group * 10}-{group * 10 + 9}"


def _seeded(task: str) -> Counter:
    """A histogram with every class of a fixed label set at 0, so a missing class shows."""
    if task == "emotion":
        return Counter(dict.fromkeys(EMOTIONS, 0))
    if task == "age":
        return Counter(dict.fromkeys((decade(10 * g) for g in range(AGE_GROUPS)), 0))
    return Counter()


def _imagefolder(part: Part) -> list[Counted]:
    from ..train.data.base import scan_images
    from ..train.data.chalearn import FOLDER_EXPECT, age_of_folder, class_dirs, class_index

    for split in ("TRAIN", "VALID"):
        if not (part.path / split).is_dir():
            raise DataError(f"{part.path / split} not found: {FOLDER_EXPECT}")
    if part.task != "age":                       # the loader's rule: TRAIN's classes, VALID's among them
        class_index(part.task, part.path, class_dirs(part.path / "TRAIN"), class_dirs(part.path / "VALID"))
    out = []
    for split in ("TRAIN", "VALID"):
        folder = part.path / split
        s = Counted(split, [], {part.task: _seeded(part.task)})
        for name in class_dirs(folder):
            label = decade(age_of_folder(folder / name)) if part.task == "age" else name
            found, empty = scan_images(folder / name)
            s.paths += found
            s.empty += empty
            s.labels[part.task][label] += len(found)
        out.append(s)
    return out


def _official(part: Part) -> list[Counted]:
    from ..train.data.base import scan_images
    from ..train.data.chalearn import OFFICIAL_EXPECT, read_gt

    out = []
    for split in ("train", "valid", "test"):
        folder, gt = part.path / split, part.path / f"{split}_gt.csv"
        if split == "test" and not (folder.is_dir() and gt.is_file()):
            continue                                         # the release before its test labels: as the loader
        for p in (folder, gt):
            if not p.exists():
                raise DataError(f"{p} not found: {OFFICIAL_EXPECT}")
        present, empty = scan_images(folder)
        by_name = {p.name: p for p in present}
        rows, _ = read_gt(gt)
        kept = [(by_name[name], age) for name, age, _ in rows if name in by_name]
        hist = _seeded("age")
        hist.update(decade(age) for _, age in kept)
        out.append(Counted(split, [p for p, _ in kept], {"age": hist}, empty, len(rows) - len(kept)))
    return out


def _fer2013(part: Part) -> list[Counted]:
    from ..train.data.fer2013 import fer2013_split_labels

    if not part.path.is_file():
        raise DataError("not found (a Kaggle fer2013.csv or its .h5 conversion)")
    out = []
    for split, labels in fer2013_split_labels(part.path).items():
        hist = _seeded("emotion")
        hist.update(EMOTIONS[int(k)] for k in labels)
        out.append(Counted(split, [], {"emotion": hist}, found=len(labels), images=len(labels)))
    return out


def _aligned(part: Part) -> list[Counted]:
    from ..train.data.base import scan_images
    from ..train.data.imdb_wiki import ALIGNED_EXPECT, GENDER_CLASSES, parse_aligned_name

    names = {v: k for k, v in GENDER_CLASSES.items()}
    splits = [s for s in ("train", "val", "test") if (part.path / s).is_dir()]
    if "train" not in splits or len(splits) < 2:
        raise DataError(f"{part.path}: {ALIGNED_EXPECT}")
    out = []
    for split in splits:
        found, empty = scan_images(part.path / split)
        s = Counted(split, [], {"gender": Counter(dict.fromkeys(GENDER_CLASSES, 0)), "age": _seeded("age")}, empty)
        for path in found:
            parsed = parse_aligned_name(path.name)
            if parsed is None:
                s.left_out += 1
                continue
            s.paths.append(path)
            s.labels["age"][decade(parsed[0])] += 1
            s.labels["gender"][names[parsed[1]]] += 1
        out.append(s)
    return out


def _mat(part: Part) -> list[Counted]:
    from ..train.data.imdb_wiki import GENDER_CLASSES, MAT_EXPECT, clean_mask, mat_ages, read_imdb_wiki_mat

    if not part.path.is_file():
        raise DataError(f"not found: {MAT_EXPECT}")
    fields = read_imdb_wiki_mat(part.path)
    ages = mat_ages(fields["dob"], fields["photo_taken"])
    keep, _ = clean_mask(fields, ages)
    names = {float(v): k for k, v in GENDER_CLASSES.items()}
    rows = [i for i in range(len(keep)) if keep[i]]
    s = Counted("rows", [part.path.parent / fields["full_path"][i] for i in rows],
               {"gender": Counter(dict.fromkeys(GENDER_CLASSES, 0)), "age": _seeded("age")},
               left_out=len(keep) - len(rows), found=len(keep))
    for i in rows:
        s.labels["gender"][names[float(fields["gender"][i])]] += 1
        s.labels["age"][decade(ages[i])] += 1
    return [s]


_COUNTERS: dict[str, Callable[[Part], list[Counted]]] = {
    "imagefolder": _imagefolder, "official": _official, "csv": _fer2013, "h5": _fer2013, "aligned": _aligned,
    "mat": _mat}


def count(part: Part) -> list[Counted]:
    """Each split of ``part`` (a DataError when the copy is missing or its loader would refuse it)."""
    if not part.path.exists():
        raise DataError("not found (the data root, or the data.* key naming this copy)")
    return _COUNTERS[part.layout](part)


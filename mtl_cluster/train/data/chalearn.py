"""ChaLearn LAP 2016 (gender, smile, age): the group's per-task image folders, or the official age release.

Indexing only lists folders and reads the label CSVs; images are decoded later (and skipped then if
corrupt), so trees of 150k files index in seconds and every layout reaches the model the same way.

Splits: the group's copy has TRAIN and VALID only, so VALID is the report (test) split and a hashed
hold-out of TRAIN is the select (val) split; the official release uses train/valid/test when the
test labels are there, else the same hold-out scheme with valid as the report split.

The hold-out key is an image's file name alone, in both layouts, never its class folder: the group's
gender, smile and age copies hold the same images under the same file names, each in its own class
folder (``female/x.jpg``, ``yes/x.jpg``, ``25/x.jpg``). Keyed with the folder, each task drew its own
hold-out, and in a multitask run most of one task's validation images were images the shared trunk
trained on for another, so epoch selection saw contaminated losses. By file name, an image held out
for one task is held out for every task that has it.
"""
from __future__ import annotations

import csv
import math
import os
from pathlib import Path

from ...config import DataConfig
from ...datasets import SOURCES
from ...errors import DataError
from ...tasks import NUM_CLASSES
from .base import FileImages, TaskData, hold_out, percent, scan_images

DATASET = SOURCES["chalearn"].title
TASKS = ("gender", "smile", "age")
FOLDER_EXPECT = "expected TRAIN/<class>/*.jpg and VALID/<class>/*.jpg"
OFFICIAL_EXPECT = ("expected train/ and valid/ image folders with train_gt.csv and valid_gt.csv "
                   "(header image,mean,stdv), and test/ with test_gt.csv where the test labels are public")
GtRow = tuple[str, float, float | None]   # image name, mean apparent age, its stdv (None: no stdv column)


def load_chalearn(task: str, data: DataConfig) -> TaskData:
    """One ChaLearn task in the layout ``data.chalearn_layout`` names (imagefolder or official)."""
    if task not in TASKS:
        raise DataError(f"ChaLearn has no {task!r} task; valid: {', '.join(TASKS)}")
    layout = data.chalearn_layout
    if layout == "imagefolder":
        return _load_imagefolder(task, data)
    if layout == "official":
        if task != "age":
            raise DataError(f"ChaLearn {task}: the official layout has age labels only; gender and smile "
                            f"need data.chalearn_layout: imagefolder (data.chalearn_{task})")
        return _load_official(data)
    raise DataError(f"data.chalearn_layout: {layout!r}; valid: imagefolder, official")


# --- imagefolder: <root>/TRAIN/<class>/*.jpg, <root>/VALID/<class>/*.jpg ---------------------------

def _load_imagefolder(task: str, data: DataConfig) -> TaskData:
    key = f"chalearn_{task}"
    root = data.path(getattr(data, key))
    for split in ("TRAIN", "VALID"):
        if not (root / split).is_dir():
            where = root / split if root.is_dir() else root
            raise DataError(f"ChaLearn {task} data not found at {where}: {FOLDER_EXPECT} "
                            f"(set data.root or data.{key})")
    train_dirs = class_dirs(root / "TRAIN")
    valid_dirs = class_dirs(root / "VALID")
    if task == "age":
        classes: dict[str, int] = {}
        train_labels = {name: age_of_folder(root / "TRAIN" / name) for name in train_dirs}
        valid_labels = {name: age_of_folder(root / "VALID" / name) for name in valid_dirs}
    else:
        classes = class_index(task, root, train_dirs, valid_dirs)
        train_labels = {name: float(classes[name]) for name in train_dirs}
        valid_labels = {name: float(classes[name]) for name in valid_dirs}
    train, skipped_train = _folder_images(root / "TRAIN", train_labels)
    valid, skipped_valid = _folder_images(root / "VALID", valid_labels)
    _need_images(train, f"ChaLearn {task} TRAIN at {root / 'TRAIN'} has no .jpg/.jpeg/.png images "
                        f"in its class folders ({FOLDER_EXPECT})")
    _need_images(valid, f"ChaLearn {task} VALID at {root / 'VALID'} has no .jpg/.jpeg/.png images "
                        f"in its class folders ({FOLDER_EXPECT})")
    fraction = data.holdout_fraction
    keys = [p.name for p in train.paths]   # "x.jpg", not "female/x.jpg": the same key in every task's copy
    train, val = hold_out(train, keys, fraction, f"ChaLearn {task} TRAIN at {root / 'TRAIN'}")
    return TaskData(task=task, dataset=DATASET, train=train, val=val, test=valid,
                    val_split=f"TRAIN hold-out {percent(fraction)}", test_split="VALID",
                    classes=classes, skipped_at_load=skipped_train + skipped_valid, source=str(root))


def class_dirs(split_dir: Path) -> list[str]:
    """Names of the class sub-folders (hidden ones ignored), in name order."""
    with os.scandir(split_dir) as entries:
        return sorted(e.name for e in entries if e.is_dir() and not e.name.startswith("."))


def class_index(task: str, root: Path, train_dirs: list[str], valid_dirs: list[str]) -> dict[str, int]:
    """Folder name -> label, taken from TRAIN so that VALID cannot silently renumber the classes."""
    want = NUM_CLASSES[task]
    if len(train_dirs) != want:
        raise DataError(f"ChaLearn {task} TRAIN at {root / 'TRAIN'} has {len(train_dirs)} class folders "
                        f"({', '.join(train_dirs) or 'none'}); expected {want}")
    classes = {name: i for i, name in enumerate(train_dirs)}
    for name in valid_dirs:
        if name not in classes:
            raise DataError(f"ChaLearn {task} VALID class folder {root / 'VALID' / name} has no TRAIN "
                            f"counterpart; TRAIN classes: {', '.join(train_dirs)}")
    return classes


def age_of_folder(folder: Path) -> float:
    """Age folders are named by the age in years (``2``, ``10``, ``25.5``)."""
    try:
        age = float(folder.name)
    except ValueError:
        age = float("nan")
    if not 0 <= age < float("inf"):  # also refuses folders named nan, inf, -3
        raise DataError(f"ChaLearn age class folder {folder} is not a number: age folders must be "
                        f"named by the age in years")
    return age


def _folder_images(split_dir: Path, labels: dict[str, float]) -> tuple[FileImages, int]:
    """All images of a split, class by class in label order (numeric for ages), files by name."""
    paths: list[Path] = []
    values: list[float] = []
    skipped = 0
    for name in sorted(labels, key=lambda n: (labels[n], n)):
        found, empty = scan_images(split_dir / name)
        paths += found
        values += [labels[name]] * len(found)
        skipped += empty
    return FileImages(paths, values), skipped


# --- official: <root>/{train,valid,test}/ + {train,valid,test}_gt.csv (image,mean,stdv) ------------

def _load_official(data: DataConfig) -> TaskData:
    root = data.path(data.chalearn_official)
    if not root.is_dir():
        raise DataError(f"ChaLearn age (official) data not found at {root}: {OFFICIAL_EXPECT} "
                        f"(set data.root or data.chalearn_official)")
    train, skipped = _official_split(root, "train")
    valid, skipped_valid = _official_split(root, "valid")
    skipped += skipped_valid
    if (root / "test").is_dir() and (root / "test_gt.csv").is_file():
        test, skipped_test = _official_split(root, "test")
        return TaskData(task="age", dataset=DATASET, train=train, val=valid, test=test, val_split="valid",
                        test_split="test", skipped_at_load=skipped + skipped_test, source=str(root))
    fraction = data.holdout_fraction   # no public test labels: valid reports, a train hold-out selects
    # keyed by file name, as the imagefolder layout is: the same image gets the same side in both
    train, val = hold_out(train, [p.name for p in train.paths], fraction,
                          f"ChaLearn age (official) train at {root / 'train'}")
    return TaskData(task="age", dataset=DATASET, train=train, val=val, test=valid,
                    val_split=f"train hold-out {percent(fraction)}", test_split="valid",
                    skipped_at_load=skipped, source=str(root))


def _official_split(root: Path, split: str) -> tuple[FileImages, int]:
    """Rows of ``<split>_gt.csv`` whose image exists and is non-empty; the rest are counted as skipped."""
    folder, gt = root / split, root / f"{split}_gt.csv"
    for path in (folder, gt):
        if not path.exists():
            raise DataError(f"ChaLearn age (official) data not found at {path}: {OFFICIAL_EXPECT} "
                            f"(set data.root or data.chalearn_official)")
    present, empty = scan_images(folder)
    by_name = {p.name: p for p in present}
    rows, has_stdv = read_gt(gt)
    rows.sort(key=lambda r: r[0])
    kept = [(by_name[name], age, sd) for name, age, sd in rows if name in by_name]
    _need_images(kept, f"ChaLearn age (official) {split}: none of the {len(rows)} rows of {gt} has a "
                       f"non-empty image in {folder}")
    images = FileImages([p for p, _, _ in kept], [age for _, age, _ in kept],
                        [float(sd or 0.0) for _, _, sd in kept] if has_stdv else None)
    return images, len(rows) - len(kept)


def read_gt(gt: Path) -> tuple[list[GtRow], bool]:
    """(image name, mean apparent age, stdv) per row, and whether the file has a stdv column.

    The stdv is the spread of the annotators' guesses: the challenge's epsilon-error weighs by it.
    """
    try:
        return _parse_gt(gt)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{gt}: not a readable CSV ({exc}); {OFFICIAL_EXPECT}") from None


def _parse_gt(gt: Path) -> tuple[list[GtRow], bool]:
    with open(gt, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header = [c.strip().lower() for c in next(reader, [])]
        if "image" not in header or "mean" not in header:
            raise DataError(f"{gt}: line 1: expected the header image,mean,stdv, got {','.join(header)!r}")
        i_image, i_mean = header.index("image"), header.index("mean")
        i_stdv = header.index("stdv") if "stdv" in header else None
        width = max(i_image, i_mean, -1 if i_stdv is None else i_stdv) + 1
        rows: list[GtRow] = []
        for row in reader:
            if not any(c.strip() for c in row):
                continue
            where = f"{gt}: line {reader.line_num}"
            if len(row) < width:
                raise DataError(f"{where}: expected columns image,mean,stdv, got {len(row)} values")
            mean = _non_negative(row[i_mean], f"{where}: mean", "the apparent age in years")
            stdv = None if i_stdv is None else _non_negative(
                row[i_stdv], f"{where}: stdv", "the standard deviation of the apparent-age votes")
            rows.append((Path(row[i_image].strip()).name, mean, stdv))  # some copies write train/000000.jpg
    return rows, i_stdv is not None


def _non_negative(text: str, what: str, meaning: str) -> float:
    """A finite number >= 0, else a one-line DataError ``<file>: line N: <col> '<text>' is not ...``."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 <= value < math.inf:
        raise DataError(f"{what} {text!r} is not a number >= 0 ({meaning})")
    return value


def _need_images(images: FileImages | list, message: str) -> None:
    """An empty split is always a wrong path or layout, never something to train on."""
    if len(images) == 0:
        raise DataError(message)


def load_task(task: str, data: DataConfig) -> TaskData:
    """The registry's entry (mtl_cluster/datasets.py): one ChaLearn task."""
    return load_chalearn(task, data)

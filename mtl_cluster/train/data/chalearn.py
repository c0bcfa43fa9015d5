"""ChaLearn LAP 2016 (gender, smile, age): the group's per-task image folders, or the official age release.

Indexing only lists folders and reads the label CSVs; images are decoded later (and skipped then if
corrupt), so trees of 150k files index in seconds and every layout reaches the model the same way.
"""
from __future__ import annotations

import csv
import math
import os
from pathlib import Path

from ...config import DataConfig
from ...errors import DataError
from ...tasks import NUM_CLASSES
from .base import FileImages, TaskData, scan_images

DATASET = "ChaLearn_2016"
TASKS = ("gender", "smile", "age")
FOLDER_EXPECT = "expected TRAIN/<class>/*.jpg and VALID/<class>/*.jpg"
OFFICIAL_EXPECT = ("expected train/ and valid/ image folders with train_gt.csv and valid_gt.csv "
                   "(header image,mean,stdv)")


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
    train_dirs = _class_dirs(root / "TRAIN")
    valid_dirs = _class_dirs(root / "VALID")
    if task == "age":
        classes: dict[str, int] = {}
        train_labels = {name: _age_of_folder(root / "TRAIN" / name) for name in train_dirs}
        valid_labels = {name: _age_of_folder(root / "VALID" / name) for name in valid_dirs}
    else:
        classes = _class_index(task, root, train_dirs, valid_dirs)
        train_labels = {name: float(classes[name]) for name in train_dirs}
        valid_labels = {name: float(classes[name]) for name in valid_dirs}
    train, skipped_train = _folder_images(root / "TRAIN", train_labels)
    valid, skipped_valid = _folder_images(root / "VALID", valid_labels)
    _need_images(train, f"ChaLearn {task} TRAIN at {root / 'TRAIN'} has no .jpg/.jpeg/.png images "
                        f"in its class folders ({FOLDER_EXPECT})")
    _need_images(valid, f"ChaLearn {task} VALID at {root / 'VALID'} has no .jpg/.jpeg/.png images "
                        f"in its class folders ({FOLDER_EXPECT})")
    return TaskData(task=task, dataset=DATASET, train=train, eval=valid, eval_split="VALID",
                    classes=classes, skipped_at_load=skipped_train + skipped_valid, source=str(root))


def _class_dirs(split_dir: Path) -> list[str]:
    """Names of the class sub-folders (hidden ones ignored), in name order."""
    with os.scandir(split_dir) as entries:
        return sorted(e.name for e in entries if e.is_dir() and not e.name.startswith("."))


def _class_index(task: str, root: Path, train_dirs: list[str], valid_dirs: list[str]) -> dict[str, int]:
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


def _age_of_folder(folder: Path) -> float:
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


# --- official: <root>/{train,valid}/ + {train,valid}_gt.csv (image,mean,stdv) ---------------------

def _load_official(data: DataConfig) -> TaskData:
    root = data.path(data.chalearn_official)
    if not root.is_dir():
        raise DataError(f"ChaLearn age (official) data not found at {root}: {OFFICIAL_EXPECT} "
                        f"(set data.root or data.chalearn_official)")
    train, skipped_train = _official_split(root, "train")
    valid, skipped_valid = _official_split(root, "valid")
    return TaskData(task="age", dataset=DATASET, train=train, eval=valid, eval_split="valid",
                    skipped_at_load=skipped_train + skipped_valid, source=str(root))


def _official_split(root: Path, split: str) -> tuple[FileImages, int]:
    """Rows of ``<split>_gt.csv`` whose image exists and is non-empty; the rest are counted as skipped."""
    folder, gt = root / split, root / f"{split}_gt.csv"
    for path in (folder, gt):
        if not path.exists():
            raise DataError(f"ChaLearn age (official) data not found at {path}: {OFFICIAL_EXPECT} "
                            f"(set data.root or data.chalearn_official)")
    present, empty = scan_images(folder)
    by_name = {p.name: p for p in present}
    rows = sorted(_read_gt(gt))
    kept = [(by_name[name], age) for name, age in rows if name in by_name]
    _need_images(kept, f"ChaLearn age (official) {split}: none of the {len(rows)} rows of {gt} has a "
                       f"non-empty image in {folder}")
    images = FileImages([p for p, _ in kept], [age for _, age in kept])
    return images, len(rows) - len(kept)


def _read_gt(gt: Path) -> list[tuple[str, float]]:
    """(image name, mean apparent age) per row; the per-image stdv is not used for training."""
    try:
        return _parse_gt(gt)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{gt}: not a readable CSV ({exc}); {OFFICIAL_EXPECT}") from None


def _parse_gt(gt: Path) -> list[tuple[str, float]]:
    with open(gt, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header = [c.strip().lower() for c in next(reader, [])]
        if "image" not in header or "mean" not in header:
            raise DataError(f"{gt}: line 1: expected the header image,mean,stdv, got {','.join(header)!r}")
        i_image, i_mean = header.index("image"), header.index("mean")
        rows = []
        for row in reader:
            if not any(c.strip() for c in row):
                continue
            if len(row) <= max(i_image, i_mean):
                raise DataError(f"{gt}: line {reader.line_num}: expected columns image,mean,stdv, "
                                f"got {len(row)} values")
            try:
                mean = float(row[i_mean])
            except ValueError:
                mean = math.nan
            if not 0 <= mean < math.inf:
                raise DataError(f"{gt}: line {reader.line_num}: mean {row[i_mean]!r} is not a number >= 0 "
                                f"(the apparent age in years)")
            rows.append((Path(row[i_image].strip()).name, mean))  # some copies write train/000000.jpg
    return rows


def _need_images(images: FileImages | list, message: str) -> None:
    """An empty split is always a wrong path or layout, never something to train on."""
    if len(images) == 0:
        raise DataError(message)

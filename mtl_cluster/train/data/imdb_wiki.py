"""IMDB-WIKI (gender, age; used for pretraining): an aligned file tree, or the release's imdb.mat/wiki.mat.

The .mat holds every detection, most of them unusable; the cleaning rules here are the ones the
age-estimation literature applies (one confident face, known gender, age 0..100).

Splits: aligned trees report on ``test/`` (``val/`` where there is no ``test/``) and select on a
hashed hold-out of ``train/``; the .mat hashes out a test share, then a differently salted
validation share of the rest.

Every hashed split is by identity, not by image: it hashes the person an image shows
(``aligned_person``, ``mat_person``), so all images of one person land on the same side and a model is
never selected or scored on a face it trained on in another photo. The hashes never change between
runs, machines or Python versions. The folders of an aligned tree are taken as they are: a person
found in ``train/`` and in the report folder is in both (hashing cannot undo a split made on disk).
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import numpy as np

from ...config import DataConfig
from ...datasets import SOURCES
from ...errors import DataError
from .base import FileImages, TaskData, hold_out, percent, scan_images, split_holdout

DATASET = SOURCES["imdb-wiki"].title
TASKS = ("gender", "age")
GENDER_CLASSES = {"female": 0, "male": 1}
MAX_AGE = 100
ALIGNED_EXPECT = ("expected train/ and val/ (or test/) folders of <age>_<gender>_<name>.jpg "
                  "(gender 0 female, 1 male)")
MAT_EXPECT = "expected imdb.mat or wiki.mat from the IMDB-WIKI release (imdb_crop/ or wiki_crop/)"
MAT_FIELDS = ("dob", "photo_taken", "full_path", "gender", "face_score", "second_face_score")
MATLAB_EPOCH_DATENUM = 719529  # Matlab datenum of 1970-01-01
DUPLICATE_SUFFIX = re.compile(r"(?<=[^\d_])\d+$")  # digits glued to a name: TomHanks4821 -> TomHanks


def load_imdb_wiki(task: str, data: DataConfig) -> TaskData:
    """Gender or age labels in the layout ``data.imdb_wiki_layout`` names (aligned or mat)."""
    if task not in TASKS:
        raise DataError(f"IMDB-WIKI has no {task!r} labels; valid: {', '.join(TASKS)}")
    if data.imdb_wiki_layout == "aligned":
        return _load_aligned(task, data)
    if data.imdb_wiki_layout == "mat":
        return _load_mat(task, data)
    raise DataError(f"data.imdb_wiki_layout: {data.imdb_wiki_layout!r}; valid: aligned, mat")


def _task_data(task: str, splits: dict[str, FileImages], names: tuple[str, str], skipped: int,
               source: str) -> TaskData:
    """TaskData from ``splits`` (train/val/test) and the (val, test) split names."""
    return TaskData(task=task, dataset=DATASET, train=splits["train"], val=splits["val"], test=splits["test"],
                    val_split=names[0], test_split=names[1],
                    classes=dict(GENDER_CLASSES) if task == "gender" else {},
                    skipped_at_load=skipped, source=source)


# --- aligned: <root>/{train,val|test}/<age>_<gender>_<name>.jpg -----------------------------------

def _load_aligned(task: str, data: DataConfig) -> TaskData:
    root = data.path(data.imdb_wiki)
    report = "test" if (root / "test").is_dir() else "val"
    found, skipped = {}, 0
    for split in ("train", report):
        folder = root / split
        if not folder.is_dir():
            where = folder if root.is_dir() else root
            raise DataError(f"IMDB-WIKI data not found at {where}: {ALIGNED_EXPECT} "
                            f"(set data.root or data.imdb_wiki)")
        found[split], n_skipped = _aligned_split(folder, task)
        skipped += n_skipped
        if len(found[split]) == 0:
            raise DataError(f"IMDB-WIKI {split} at {folder} has no usable images: {ALIGNED_EXPECT}")
    fraction = data.holdout_fraction   # by person: all of a person's train/ images on one side
    train, val = hold_out(found["train"], [aligned_person(p.name) for p in found["train"].paths], fraction,
                          f"IMDB-WIKI train at {root / 'train'}", key_name="persons")
    return _task_data(task, {"train": train, "val": val, "test": found[report]},
                      (f"train hold-out {percent(fraction)}", report), skipped, str(root))


def _aligned_split(folder: Path, task: str) -> tuple[FileImages, int]:
    """Files whose name gives age and gender; the others (and zero-byte ones) are counted as skipped."""
    found, skipped = scan_images(folder)
    paths: list[Path] = []
    labels: list[float] = []
    for path in found:
        parsed = parse_aligned_name(path.name)
        if parsed is None:
            skipped += 1
            continue
        age, gender = parsed
        paths.append(path)
        labels.append(float(gender if task == "gender" else age))
    return FileImages(paths, labels), skipped


def parse_aligned_name(name: str) -> tuple[int, int] | None:
    """``<age>_<gender>_<name>.jpg`` -> (age, gender), or None unless age is 0..100 and gender 0/1."""
    parts = name.split("_", 2)
    if len(parts) != 3 or not parts[0].isdigit() or parts[1] not in ("0", "1"):
        return None
    age = int(parts[0])
    return (age, int(parts[1])) if age <= MAX_AGE else None


def aligned_person(name: str) -> str:
    """The hold-out key of an aligned ``<age>_<gender>_<name>.jpg``: the person, lower-cased.

    The person is ``<name>`` (everything after the second underscore, underscores included, without
    the suffix) less a per-image number glued to its end: the preprocessing that makes these trees
    (Age-Gender-Pred) names a person's first image ``35_1_TomHanks.jpg`` and a later one whose name is
    taken ``41_1_TomHanks4821.jpg``, so both are ``tomhanks``. A number after an underscore is part of
    the name (``Jane_Q_Doe_0003`` is its own key): no known copy writes one as a duplicate mark, and
    trailing digits that are the whole name are kept. Lower-cased as that tool groups persons; two
    people who end up with one key only ever move together, which cannot leak.
    """
    person = name.split("_", 2)[-1]
    dot = person.rfind(".")
    person = person[:dot] if dot > 0 else person
    return DUPLICATE_SUFFIX.sub("", person).lower()


# --- mat: the release's struct of per-detection arrays ---------------------------------------------

def _load_mat(task: str, data: DataConfig) -> TaskData:
    path = data.path(data.imdb_wiki_mat)
    if not path.is_file():
        raise DataError(f"IMDB-WIKI .mat not found at {path}: {MAT_EXPECT} "
                        f"(set data.root or data.imdb_wiki_mat)")
    fields = read_imdb_wiki_mat(path)
    ages = mat_ages(fields["dob"], fields["photo_taken"])
    keep, dropped = clean_mask(fields, ages)
    label = fields["gender"] if task == "gender" else ages
    rows = sorted((fields["full_path"][i], float(label[i])) for i in np.flatnonzero(keep))
    test_fraction, val_fraction = data.imdb_wiki_val_fraction, data.holdout_fraction
    is_test = [in_val_split(rel, test_fraction) for rel, _ in rows]   # both hash mat_person: by person
    rest = [r for r, t in zip(rows, is_test) if not t]
    is_val = split_holdout([mat_person(rel) for rel, _ in rest], val_fraction)   # salted: independent of the test hash
    splits = {"test": [r for r, t in zip(rows, is_test) if t],
              "val": [r for r, v in zip(rest, is_val) if v],
              "train": [r for r, v in zip(rest, is_val) if not v]}
    for split, items in splits.items():
        if not items:
            raise DataError(f"IMDB-WIKI {path}: the {split} split is empty ({len(rows)} rows pass cleaning, "
                            f"data.imdb_wiki_val_fraction={test_fraction:g}, "
                            f"data.holdout_fraction={val_fraction:g})")
    note = (f"{path} (kept {len(rows)} of {len(keep)}; dropped {dropped['no_face']} without a face score "
            f">= 1, {dropped['second_face']} with a second face, {dropped['bad_age']} with age outside "
            f"0..{MAX_AGE}, {dropped['no_gender']} with unknown gender)")
    names = (f"train hold-out {percent(val_fraction)}", f"test (hashed {percent(test_fraction)})")
    return _task_data(task, {k: _file_images(path.parent, v) for k, v in splits.items()}, names,
                      sum(dropped.values()), note)


def _file_images(base: Path, rows: list[tuple[str, float]]) -> FileImages:
    return FileImages([base / rel for rel, _ in rows], [label for _, label in rows])


def read_imdb_wiki_mat(path: Path) -> dict:
    """The six fields used, as flat arrays (``full_path`` as a list of str), from ``imdb`` or ``wiki``."""
    from scipy.io import loadmat
    from scipy.io.matlab import MatReadError

    try:
        mat = loadmat(str(path))
    except (ValueError, OSError, NotImplementedError, TypeError, MatReadError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DataError(f"{path}: not a readable .mat file ({first}); {MAT_EXPECT}") from None
    key = next((k for k in ("imdb", "wiki") if k in mat), None)
    if key is None:
        found = sorted(k for k in mat if not k.startswith("__"))
        raise DataError(f"{path}: no struct named imdb or wiki (found {', '.join(found) or 'none'}); "
                        f"{MAT_EXPECT}")
    struct = mat[key]
    names = struct.dtype.names or ()
    missing = [f for f in MAT_FIELDS if f not in names]
    if missing or struct.size != 1:
        raise DataError(f"{path}: struct {key} lacks fields {', '.join(missing) or '(not 1x1)'}; "
                        f"expected {', '.join(MAT_FIELDS)}")
    record = struct.reshape(-1)[0]
    try:
        fields: dict[str, Any] = {f: np.asarray(record[f], dtype=np.float64).reshape(-1)
                  for f in MAT_FIELDS if f != "full_path"}
    except (TypeError, ValueError):
        raise DataError(f"{path}: fields {', '.join(MAT_FIELDS[:2] + MAT_FIELDS[3:])} of {key} must be "
                        f"numeric arrays") from None
    fields["full_path"] = [_cell_str(c) for c in np.asarray(record["full_path"]).reshape(-1)]
    sizes = {f: len(v) for f, v in fields.items()}
    if len(set(sizes.values())) != 1:
        raise DataError(f"{path}: fields of {key} differ in length: "
                        + ", ".join(f"{f}={n}" for f, n in sizes.items()))
    return fields


def _cell_str(cell: np.ndarray) -> str:
    """A Matlab char cell entry (array(['01/x.jpg'])) -> '01/x.jpg' with forward slashes."""
    value = np.asarray(cell).reshape(-1)
    return str(value[0]).replace("\\", "/") if value.size else ""


def mat_ages(dob: np.ndarray, photo_taken: np.ndarray) -> np.ndarray:
    """photo_taken - birth year, NaN where dob is not a usable datenum.

    Same as the usual ``datetime.fromordinal(int(dob)) + timedelta(days=dob % 1) - timedelta(days=366)``
    (the time of day never changes the year), done on the whole array at once.
    """
    years = np.full(dob.shape, np.nan)
    valid = np.isfinite(dob) & (dob >= 367)  # datenum 367 = 0001-01-01, the first date Python has
    days = np.floor(dob[valid]).astype(np.int64) - MATLAB_EPOCH_DATENUM
    years[valid] = days.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970
    return photo_taken - years


def clean_mask(fields: dict, ages: np.ndarray) -> tuple[np.ndarray, dict[str, int]]:
    """Rows to keep, and how many were dropped for each reason (first failing rule counts)."""
    no_face = ~(fields["face_score"] >= 1)  # -inf (no face) and NaN both fail
    second_face = ~no_face & ~np.isnan(fields["second_face_score"])
    rest = ~no_face & ~second_face
    bad_age = rest & ~((ages >= 0) & (ages <= MAX_AGE))
    no_gender = rest & ~bad_age & ~np.isin(fields["gender"], (0.0, 1.0))   # NaN, or not 0 female / 1 male
    keep = rest & ~bad_age & ~no_gender
    dropped = {"no_face": int(no_face.sum()), "second_face": int(second_face.sum()),
               "bad_age": int(bad_age.sum()), "no_gender": int(no_gender.sum())}
    return keep, dropped


def mat_person(rel_path: str) -> str:
    """The hold-out key of a .mat row: the person, i.e. the id that starts its file name (the release
    names IMDb images ``nm0000001_rm124825600_1899-5-27_1968.jpg`` and Wikipedia ones
    ``10000217_1981-05-05_2009.jpg``: IMDb's nm person id; in wiki.mat the number before the birth
    date). Rows of one person, in whatever ``NN/`` folder, share it; a name without ``_`` is its own key.
    The ``name`` column is not used: names repeat across people and are empty in some wiki.mat rows."""
    return rel_path.rsplit("/", 1)[-1].split("_", 1)[0]


def in_val_split(rel_path: str, fraction: float) -> bool:
    """Stable assignment of a .mat row to the test split (data.imdb_wiki_val_fraction; the name is
    historical): the unsalted hash of the row's person (``mat_person``), not Python's hash(), so every
    run agrees and all images of a person are on the same side. Earlier versions hashed the whole path,
    one image at a time, which put one person's photos in train and in test."""
    digest = hashlib.blake2b(mat_person(rel_path).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64 < fraction


def load_task(task: str, data: DataConfig) -> TaskData:
    """The registry's entry (mtl_cluster/datasets.py): gender or age."""
    return load_imdb_wiki(task, data)

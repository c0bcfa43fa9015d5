"""FER2013 (emotion): Kaggle's fer2013.csv or its common HDF5 conversion, both into 48x48 grey arrays.

The whole dataset is 35,887 images of 48x48 bytes (80 MB), so it is parsed once into memory; each
CSV row is parsed by numpy in C, which keeps the real file to a couple of seconds.

Splits: Training trains, ``data.fer2013_eval_split`` (PrivateTest by default) is the report (test)
split and the other of PublicTest/PrivateTest the select (val) split, as the Kaggle challenge used them.
"""
from __future__ import annotations

import csv
import warnings
from pathlib import Path

import numpy as np

from ...config import DataConfig
from ...datasets import SOURCES
from ...errors import DataError
from ...tasks import EMOTIONS
from .base import ArrayImages, TaskData

DATASET = SOURCES["fer2013"].title
SPLITS = ("Training", "PublicTest", "PrivateTest")
EVAL_SPLITS = ("PublicTest", "PrivateTest")
SIDE = 48
PIXELS = SIDE * SIDE
CSV_COLUMNS = ("emotion", "pixels", "Usage")
EXPECT = ("expected the Kaggle fer2013.csv (emotion,pixels,Usage) or an .h5/.hdf5 with "
          "Training_pixel/Training_label/PublicTest_*/PrivateTest_*")

Split = tuple[np.ndarray, np.ndarray]  # (N, 48, 48) uint8 pixels, (N,) int labels


def load_fer2013(data: DataConfig) -> TaskData:
    """Training as train, ``data.fer2013_eval_split`` as test, the other test split as val (.csv or .h5)."""
    path, test_split = _checked_path(data), data.fer2013_eval_split
    val_split = next(s for s in EVAL_SPLITS if s != test_split)
    if path.suffix.lower() == ".csv":
        splits = read_fer2013_csv(path)
    else:
        splits = read_fer2013_h5(path)
    for name in SPLITS:
        if len(splits[name][1]) == 0:
            raise DataError(f"FER2013 file {path} has no {name} images")
    return TaskData(task="emotion", dataset=DATASET, train=ArrayImages(*splits["Training"]),
                    val=ArrayImages(*splits[val_split]), test=ArrayImages(*splits[test_split]),
                    val_split=val_split, test_split=test_split,
                    classes={name: i for i, name in enumerate(EMOTIONS)}, source=str(path))


def fer2013_train_size(data: DataConfig) -> int:
    """The number of Training images without decoding a pixel: the CSV's Usage column or the h5's label length.

    Agrees with ``len(load_fer2013(data).train)`` on any file that loads; a file it cannot count is a DataError.
    """
    path = _checked_path(data)
    n = _count_csv_training(path) if path.suffix.lower() == ".csv" else _count_h5_training(path)
    if n == 0:
        raise DataError(f"FER2013 file {path} has no Training images")
    return n


def _checked_path(data: DataConfig) -> Path:
    """The configured file, after checking the split setting, that it exists and has a known suffix."""
    path = data.path(data.fer2013)
    if data.fer2013_eval_split not in EVAL_SPLITS:
        raise DataError(f"data.fer2013_eval_split: {data.fer2013_eval_split!r}; valid: {', '.join(EVAL_SPLITS)}")
    if not path.is_file():
        raise DataError(f"FER2013 data not found at {path}: {EXPECT} (set data.root or data.fer2013)")
    if path.suffix.lower() not in (".csv", ".h5", ".hdf5"):
        raise DataError(f"FER2013 file {path} has suffix {path.suffix!r}: {EXPECT}")
    return path


# --- CSV ------------------------------------------------------------------------------------------

def read_fer2013_csv(path: Path) -> dict[str, Split]:
    """Every split of a Kaggle-format CSV; any bad row is a DataError naming its line."""
    try:
        return _parse_csv(path)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: not a readable CSV ({exc}); {EXPECT}") from None


def _parse_csv(path: Path) -> dict[str, Split]:
    pixels: dict[str, list[np.ndarray]] = {s: [] for s in SPLITS}
    labels: dict[str, list[int]] = {s: [] for s in SPLITS}
    with open(path, newline="", encoding="utf-8-sig") as f, warnings.catch_warnings():
        # numpy < 2.3 only warns (and truncates) on a non-numeric token; make that an error too.
        warnings.simplefilter("error", DeprecationWarning)
        reader = csv.reader(f)
        i_emotion, i_pixels, i_usage = _csv_columns(path, next(reader, None))
        width = max(i_emotion, i_pixels, i_usage) + 1
        for row in reader:
            if not row:
                continue
            where = f"{path}: line {reader.line_num}"
            if len(row) < width:
                raise DataError(f"{where}: expected {width} columns (emotion,pixels,Usage), got {len(row)}")
            usage = row[i_usage].strip()
            if usage not in pixels:
                raise DataError(f"{where}: Usage {usage!r} is not one of {', '.join(SPLITS)}")
            labels[usage].append(_csv_label(where, row[i_emotion]))
            pixels[usage].append(_csv_pixels(where, row[i_pixels]))
    return {s: _stack(pixels[s], labels[s]) for s in SPLITS}


def _count_csv_training(path: Path) -> int:
    """Training rows without parsing pixels: Kaggle's Usage is the last column, so each line's tail after
    its last comma is read (a few times faster than the csv module on 300 MB); other orders use csv."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            columns = _csv_columns(path, next(reader, None))
            if columns[2] != max(columns):
                return sum(len(row) > columns[2] and row[columns[2]].strip() == "Training" for row in reader)
        with open(path, "rb") as raw:
            next(raw)
            return sum(line.rpartition(b",")[2].strip().strip(b'"') == b"Training" for line in raw)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: not a readable CSV ({exc}); {EXPECT}") from None


def fer2013_split_labels(path: Path) -> dict[str, np.ndarray]:
    """Each split's emotion labels without parsing a pixel (``mtl-data check``'s counts and histograms):
    the CSV's emotion and Usage columns, or the h5's ``<split>_label`` datasets. Bad labels are DataErrors
    as in the loader; the pixels are checked only by ``read_fer2013_csv``/``read_fer2013_h5``."""
    if path.suffix.lower() != ".csv":
        with _open_h5(path) as f:
            missing = [f"{s}_label" for s in SPLITS if f"{s}_label" not in f]
            if missing:
                raise DataError(f"{path}: missing datasets {', '.join(missing)}; {EXPECT}")
            out = {}
            for s in SPLITS:
                labels = np.asarray(f[f"{s}_label"][()])
                out[s] = _h5_labels(f"{path}: {s}", labels[:, 0] if labels.ndim == 2 and labels.shape[1] == 1
                                    else labels)
            return out
    try:
        return _csv_split_labels(path)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: not a readable CSV ({exc}); {EXPECT}") from None


def _csv_split_labels(path: Path) -> dict[str, np.ndarray]:
    labels: dict[str, list[int]] = {s: [] for s in SPLITS}

    def add(line_num: int, emotion: str, usage: str) -> None:
        where = f"{path}: line {line_num}"
        if usage not in labels:
            raise DataError(f"{where}: Usage {usage!r} is not one of {', '.join(SPLITS)}")
        labels[usage].append(_csv_label(where, emotion))

    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        i_emotion, _, i_usage = _csv_columns(path, next(reader, None))
        if (i_emotion, i_usage) != (0, 2):                     # not Kaggle's order: the csv module's pace
            for row in reader:
                if row:
                    add(reader.line_num, row[i_emotion] if len(row) > i_emotion else "",
                        row[i_usage].strip() if len(row) > i_usage else "")
    if (i_emotion, i_usage) == (0, 2):                         # Kaggle's order: first and last field of a line
        with open(path, "rb") as raw:
            next(raw)
            for line_num, line in enumerate(raw, start=2):
                if line.strip():
                    add(line_num, line.partition(b",")[0].decode(),
                        line.rpartition(b",")[2].strip().strip(b'"').decode())
    return {s: np.asarray(v, np.int64) for s, v in labels.items()}


def _csv_columns(path: Path, header: list[str] | None) -> tuple[int, int, int]:
    found = [c.strip() for c in header or []]
    missing = [c for c in CSV_COLUMNS if c not in found]
    if missing:
        raise DataError(f"{path}: line 1: expected the header {','.join(CSV_COLUMNS)}, "
                        f"found {','.join(found) or 'nothing'}")
    return found.index("emotion"), found.index("pixels"), found.index("Usage")


def _csv_label(where: str, text: str) -> int:
    try:
        label = int(text)
    except ValueError:
        raise DataError(f"{where}: emotion {text!r} is not an integer 0..{len(EMOTIONS) - 1}") from None
    if not 0 <= label < len(EMOTIONS):
        raise DataError(f"{where}: emotion {label} is out of 0..{len(EMOTIONS) - 1}")
    return label


def _csv_pixels(where: str, text: str) -> np.ndarray:
    """One row's 2304 space-separated grey values -> (48, 48) uint8."""
    try:
        values = np.fromstring(text, dtype=np.int32, sep=" ")
    except (ValueError, DeprecationWarning):
        raise DataError(f"{where}: {_pixel_problem(text)}") from None
    if values.size != PIXELS:
        raise DataError(f"{where}: {values.size} pixel values, expected {PIXELS} ({SIDE}x{SIDE})")
    if values.min() < 0 or values.max() > 255:
        raise DataError(f"{where}: pixel values must be 0..255, got {values.min()}..{values.max()}")
    return values.astype(np.uint8).reshape(SIDE, SIDE)


def _pixel_problem(text: str) -> str:
    """Slow path, only for a row numpy refused: say which token is wrong."""
    for k, token in enumerate(text.split(), start=1):
        if not token.isdigit():
            return f"pixel {k} is {token[:20]!r}, not an integer 0..255"
    return "pixels are not space-separated integers 0..255"  # pragma: no cover - split found no culprit


def _stack(pixels: list[np.ndarray], labels: list[int]) -> Split:
    if not pixels:
        return np.zeros((0, SIDE, SIDE), np.uint8), np.zeros(0, np.int64)
    return np.stack(pixels), np.asarray(labels, np.int64)


# --- HDF5 -----------------------------------------------------------------------------------------

def _open_h5(path: Path):
    """The file opened read-only with h5py, or a one-line DataError."""
    try:
        import h5py
    except ImportError:
        raise DataError(f"reading {path} needs h5py (pip install h5py), "
                        f"or use the Kaggle fer2013.csv") from None
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise DataError(f"{path}: not a readable HDF5 file ({_first_line(exc)})") from None


def _count_h5_training(path: Path) -> int:
    """The length of ``Training_label`` (its metadata only)."""
    with _open_h5(path) as f:
        shape = getattr(f.get("Training_label"), "shape", None)
        if not shape:
            found = ", ".join(sorted(f.keys())) or "none"
            raise DataError(f"{path}: no Training_label dataset (found {found}); {EXPECT}")
        return int(shape[0])


def read_fer2013_h5(path: Path, splits: tuple[str, ...] = SPLITS) -> dict[str, Split]:
    """``<split>_pixel`` / ``<split>_label`` datasets of the usual conversion, for the splits asked."""
    with _open_h5(path) as f:
        expected = [f"{s}_{kind}" for s in splits for kind in ("pixel", "label")]
        found = sorted(f.keys())
        missing = [k for k in expected if k not in found]
        if missing:
            raise DataError(f"{path}: missing datasets {', '.join(missing)}; expected "
                            f"{', '.join(expected)}; found {', '.join(found) or 'none'}")
        try:
            arrays = {s: (np.asarray(f[f"{s}_pixel"][()]), np.asarray(f[f"{s}_label"][()])) for s in splits}
        except (TypeError, ValueError, AttributeError, OSError) as exc:   # a group, or an unreadable dataset
            raise DataError(f"{path}: cannot read the datasets as arrays ({_first_line(exc)}); {EXPECT}") from None
        return {s: _h5_split(path, s, *arrays[s]) for s in splits}


def _h5_split(path: Path, split: str, pixels: np.ndarray, labels: np.ndarray) -> Split:
    where = f"{path}: {split}"
    if pixels.ndim < 2:
        raise DataError(f"{where}_pixel has shape {pixels.shape}; expected (N, {PIXELS}) or (N, {SIDE}, {SIDE})")
    n = len(pixels)
    if pixels.shape[1:] == (PIXELS,):
        pixels = pixels.reshape(n, SIDE, SIDE)
    elif pixels.shape[1:] != (SIDE, SIDE):
        raise DataError(f"{where}_pixel has shape {pixels.shape}; "
                        f"expected (N, {PIXELS}) or (N, {SIDE}, {SIDE})")
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.shape != (n,):
        raise DataError(f"{where}_label has shape {labels.shape}; expected ({n},) to match {split}_pixel")
    return _as_uint8(where, pixels), _h5_labels(where, labels)


def _as_uint8(where: str, pixels: np.ndarray) -> np.ndarray:
    """uint8 as is; other numbers must already be grey levels 0..255 (0..1 floats are refused)."""
    if pixels.dtype == np.uint8:
        return np.ascontiguousarray(pixels)
    if not np.issubdtype(pixels.dtype, np.number):
        raise DataError(f"{where}_pixel has dtype {pixels.dtype}; expected uint8 or numbers 0..255")
    if pixels.size == 0:
        return pixels.astype(np.uint8)
    lo, hi = float(np.min(pixels)), float(np.max(pixels))
    if not (np.isfinite(lo) and np.isfinite(hi)) or lo < 0 or hi > 255:
        raise DataError(f"{where}_pixel values must be 0..255, got {lo:g}..{hi:g}")
    if np.issubdtype(pixels.dtype, np.floating) and hi <= 1.0:
        raise DataError(f"{where}_pixel looks scaled to 0..1 (max {hi:g}); expected grey levels 0..255")
    return np.rint(pixels).astype(np.uint8)


def _h5_labels(where: str, labels: np.ndarray) -> np.ndarray:
    if labels.size and (not np.issubdtype(labels.dtype, np.number) or np.any(labels != np.rint(labels))):
        raise DataError(f"{where}_label must hold integers 0..{len(EMOTIONS) - 1}, got dtype {labels.dtype}")
    labels = labels.astype(np.int64)
    bad = (labels < 0) | (labels >= len(EMOTIONS))
    if bad.any():
        raise DataError(f"{where}_label has {int(bad.sum())} values outside 0..{len(EMOTIONS) - 1} "
                        f"(first: {labels[bad][0]} at index {int(np.argmax(bad))})")
    return labels


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def load_task(task: str, data: DataConfig) -> TaskData:
    """The registry's entry (mtl_cluster/datasets.py): FER2013 labels one task, emotion."""
    if task != "emotion":
        raise DataError(f"FER2013 has no {task!r} labels; valid: emotion")
    return load_fer2013(data)


def train_size(data: DataConfig) -> int:
    """The registry's cheap count: rows, no pixels decoded."""
    return fer2013_train_size(data)

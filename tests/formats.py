"""Writers of tiny datasets in each real on-disk format, for tests that load them through the real code.

Each writer lays files out exactly as the real release or the group's copy does (folder names, CSV
headers, HDF5 keys, the .mat struct) and returns what it wrote, so a test can check counts and labels
without trusting the loader. Images are 16x16 noise: decodable, different, and fast to write.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

FER_SPLITS = ("Training", "PublicTest", "PrivateTest")


@dataclass
class Written:
    """What a file-tree writer produced."""

    root: Path
    splits: dict[str, list[tuple[Path, Any]]]   # split -> [(image file, label)] a loader must return
    skipped: list[Path] = field(default_factory=list)  # entries a loader must count as skipped
    ignored: list[Path] = field(default_factory=list)  # files a loader must neither load nor count
    sigma: dict[Path, float] = field(default_factory=dict)  # image file -> the stdv its gt row gives

    def count(self, split: str) -> int:
        return len(self.splits[split])


@dataclass
class MatRow:
    """One row of a written imdb.mat/wiki.mat: its path, true labels and the cleaning rule it fails."""

    rel: str
    age: int
    gender: float
    drop: str | None  # None (kept), no_face, second_face, bad_age or no_gender


def write_image(path: Path, seed: int = 0, size: int = 16) -> Path:
    """A small noise image; the format follows the suffix (.jpg/.jpeg/.png, any case)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def _empty(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


# --- ChaLearn --------------------------------------------------------------------------------------

def write_chalearn_imagefolder(root: Path, classes: tuple[str, ...] = ("female", "male"),
                               n_per_class: int = 3, n_valid_per_class: int = 2,
                               zero_byte: int = 1, extras: bool = True) -> Written:
    """The group's ``TRAIN/<class>/*.jpg`` + ``VALID/<class>/*.jpg`` tree; labels are class names.

    The first class mixes .jpg, .JPEG and .png; ``zero_byte`` empty .jpg files go in TRAIN's first
    class; ``extras`` adds files a loader must ignore (a .txt, Thumbs.db, a macOS ``._`` file).
    """
    root = Path(root)
    suffixes = (".jpg", ".JPEG", ".png")
    splits: dict[str, list[tuple[Path, Any]]] = {}
    for split, n in (("TRAIN", n_per_class), ("VALID", n_valid_per_class)):
        splits[split] = []
        for c, name in enumerate(classes):
            for i in range(n):
                suffix = suffixes[i % len(suffixes)] if c == 0 else ".jpg"
                path = root / split / name / f"{split.lower()}_{name}_{i:03d}{suffix}"
                write_image(path, seed=i + 100 * c)
                splits[split].append((path, name))
    written = Written(root, splits)
    first = root / "TRAIN" / classes[0]
    written.skipped = [_empty(first / f"empty_{i}.jpg") for i in range(zero_byte)]
    if extras:
        (first / "._train_000.jpg").write_bytes(b"\x00\x05\x16\x07 macOS resource fork")
        (first / "notes.txt").write_text("not an image\n")
        (first / "Thumbs.db").write_bytes(b"\x00" * 8)
        (root / "TRAIN" / "README.txt").write_text("labels in folder names\n")
        written.ignored = [first / "._train_000.jpg", first / "notes.txt", first / "Thumbs.db"]
    return written


def write_chalearn_official(root: Path, n_train: int = 5, n_valid: int = 3, n_test: int = 2,
                            missing: int = 1, test: bool = True) -> Written:
    """The official age release: ``train/ valid/ test/`` + ``{split}_gt.csv`` (image,mean,stdv).

    ``missing`` rows per gt file name images that are not on disk (listed in ``skipped``); without
    ``test`` there is no test/ nor test_gt.csv (the release before its test labels were public).
    """
    root = Path(root)
    splits: dict[str, list[tuple[Path, Any]]] = {}
    skipped: list[Path] = []
    sigma: dict[Path, float] = {}
    names = ("train", "valid", "test") if test else ("train", "valid")
    for s, (split, n) in enumerate(zip(names, (n_train, n_valid, n_test))):
        rows = []
        splits[split] = []
        for i in range(n + missing):
            name = f"{s * 1000 + i:06d}.jpg"
            mean, stdv = 20.0 + 3.25 * i + 0.1 * s, 1.5 + 0.25 * i
            rows.append(f"{name},{mean},{stdv}")
            if i < n:
                path = write_image(root / split / name, seed=s * 1000 + i)
                splits[split].append((path, mean))
                sigma[path] = stdv
            else:
                skipped.append(root / split / name)
        (root / split).mkdir(parents=True, exist_ok=True)
        (root / f"{split}_gt.csv").write_text("image,mean,stdv\n" + "\n".join(rows) + "\n")
    return Written(root, splits, skipped, sigma=sigma)


# --- FER2013 ---------------------------------------------------------------------------------------

def fer2013_arrays(n_train: int = 6, n_public: int = 3, n_private: int = 4,
                   seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Split -> ((N, 48, 48) uint8 pixels, (N,) int64 labels 0..6), the content both writers take."""
    rng = np.random.default_rng(seed)
    sizes = dict(zip(FER_SPLITS, (n_train, n_public, n_private)))
    return {s: (rng.integers(0, 256, (n, 48, 48), dtype=np.uint8), rng.integers(0, 7, n).astype(np.int64))
            for s, n in sizes.items()}


def write_fer2013_csv(path: Path, data: dict | None = None, **sizes: int) -> dict:
    """Kaggle's fer2013.csv: ``emotion,pixels,Usage``, splits interleaved (order kept within a split)."""
    data = data if data is not None else fer2013_arrays(**sizes)
    per_split = {s: [f"{int(y)},{' '.join(map(str, x.reshape(-1)))},{s}" for x, y in zip(*data[s])]
                 for s in FER_SPLITS}
    lines = ["emotion,pixels,Usage"]
    for i in range(max(len(v) for v in per_split.values())):
        lines += [per_split[s][i] for s in FER_SPLITS if i < len(per_split[s])]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text("\n".join(lines) + "\n")
    return data


def write_fer2013_h5(path: Path, data: dict | None = None, flat: bool = True, dtype: str = "uint8",
                     **sizes: int) -> dict:
    """The usual HDF5 conversion: ``<split>_pixel`` ((N,2304); (N,48,48) if not flat) + ``<split>_label``."""
    import h5py

    data = data if data is not None else fer2013_arrays(**sizes)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        for s in FER_SPLITS:
            pixels, labels = data[s]
            pixels = pixels.reshape(len(pixels), -1) if flat else pixels
            f.create_dataset(f"{s}_pixel", data=pixels.astype(dtype))
            f.create_dataset(f"{s}_label", data=labels)
    return data


# --- IMDB-WIKI -------------------------------------------------------------------------------------

def write_imdb_wiki_aligned(root: Path, n_train: int = 6, n_val: int = 3, zero_byte: int = 1,
                            n_test: int = 0) -> Written:
    """``train/`` and ``val/`` (and ``test/`` if ``n_test``) of ``<age>_<gender>_<name>.jpg``; labels (age, gender).

    Names contain underscores (only the first two separate fields); ``skipped`` holds names that do
    not parse (no fields, non-numeric age, gender 2, age 150) and zero-byte files.
    """
    root = Path(root)
    splits: dict[str, list[tuple[Path, Any]]] = {}
    for split, n in (("train", n_train), ("val", n_val), ("test", n_test)):
        if split == "test" and not n:
            continue
        splits[split] = []
        for i in range(n):
            age, gender = (3 + 11 * i) % 101, i % 2
            path = write_image(root / split / f"{age}_{gender}_Jane_Q_Doe_{i:04d}.jpg", seed=i)
            splits[split].append((path, (age, gender)))
    bad = ["nm0000001_rm1.jpg", "xx_1_name.jpg", "30_2_name.jpg", "150_1_name.jpg"]
    skipped = [write_image(root / "train" / name, seed=7) for name in bad]
    skipped += [_empty(root / "train" / f"40_1_empty_{i}.jpg") for i in range(zero_byte)]
    return Written(root, splits, skipped, ignored=[_text(root / "val" / "list.txt")])


def _text(path: Path) -> Path:
    path.write_text("not an image\n")
    return path


def matlab_datenum(day: dt.date, fraction: float = 0.0) -> float:
    """Matlab's serial date (day 1 = 0000-01-01), as the release stores dob."""
    return day.toordinal() + 366 + fraction


def usual_age(dob: float, photo_taken: int) -> int:
    """The age as the IMDB-WIKI tooling computes it, kept here to check the loader's vectorised version."""
    birth = dt.datetime.fromordinal(int(dob)) + dt.timedelta(days=dob % 1) - dt.timedelta(days=366)
    return photo_taken - birth.year


def write_imdb_wiki_mat(root: Path, n_good: int = 24, name: str = "imdb") -> list[MatRow]:
    """``<root>/<name>.mat`` with the release's struct (1x1, fields 1xN) and the images it lists.

    Besides ``n_good`` clean rows it writes one row per cleaning rule (and one failing two rules,
    which counts for the first); every listed image exists, in ``NN/`` folders as in the release.
    """
    root = Path(root)
    # dob, photo_taken, gender, face_score, second_face_score, the rule it fails
    specs: list[tuple[float, int, float, float, float, str | None]] = []
    for i in range(n_good):
        born = dt.date(1940 + (7 * i) % 50, 12, 31) if i % 3 == 0 else dt.date(1940 + i, 1 + i % 12, 1 + i % 28)
        dob = matlab_datenum(born, fraction=0.75 * (i % 2))  # Dec 31 + a fraction stays in that year
        specs.append((dob, 2000 + (4 * i) % 15, float(i % 2), 1.0 + 0.25 * (i % 8), np.nan, None))
    d1970 = matlab_datenum(dt.date(1970, 6, 15))
    specs += [
        (d1970, 2000, 1.0, -np.inf, np.nan, "no_face"),
        (d1970, 2000, 0.0, 0.75, np.nan, "no_face"),
        (d1970, 2000, np.nan, -np.inf, np.nan, "no_face"),           # also no gender: first rule counts
        (d1970, 2000, 1.0, 2.5, 1.8, "second_face"),
        (d1970, 1960, 0.0, 3.0, np.nan, "bad_age"),                   # photo before birth
        (matlab_datenum(dt.date(1890, 1, 1)), 2001, 1.0, 3.0, np.nan, "bad_age"),  # 111 years
        (d1970, 2070, 1.0, 3.0, np.nan, None),                        # exactly 100: kept
        (d1970, 1970, 0.0, 3.0, np.nan, None),                        # exactly 0: kept
        (d1970, 2000, np.nan, 3.0, np.nan, "no_gender"),
    ]
    rows = []
    for i, (dob, taken, gender, *_rest, drop) in enumerate(specs):
        rel = f"{i % 100:02d}/nm{i:07d}_rm{i:09d}_{taken}.jpg"
        write_image(root / rel, seed=i)
        rows.append(MatRow(rel, usual_age(dob, taken), gender, drop))
    n = len(specs)
    cols = list(zip(*specs))

    def row_array(values: Any, dtype: Any = np.float64) -> np.ndarray:
        return np.asarray(values, dtype=dtype).reshape(1, n)

    def cell(values: list[Any]) -> np.ndarray:
        out = np.empty((1, n), dtype=object)
        for j, v in enumerate(values):
            out[0, j] = v
        return out

    struct = {
        "dob": row_array(cols[0]),
        "photo_taken": row_array(cols[1], np.uint16),
        "full_path": cell([r.rel for r in rows]),
        "gender": row_array(cols[2]),
        "name": cell([f"Person {i}" for i in range(n)]),
        "face_location": cell([np.array([[1.0, 2.0, 30.0, 40.0]]) for _ in range(n)]),
        "face_score": row_array(cols[3]),
        "second_face_score": row_array(cols[4]),
    }
    if name == "imdb":
        struct["celeb_id"] = row_array(range(1, n + 1), np.uint16)
    from scipy.io import savemat

    savemat(str(root / f"{name}.mat"), {name: struct})
    return rows


def write_imdb_wiki_aligned_people(root: Path, n_people: int = 30, n_images: int = 4, n_report: int = 6,
                                   test: bool = True) -> tuple[Written, dict[Path, str]]:
    """An aligned IMDB-WIKI tree with several images per person, named as its preprocessing names them.

    A person's first image is ``<age>_<gender>_<Name>.jpg``; the others, taken in other years, carry a
    number glued to the name (``41_1_TomHanks4821.jpg``), as that tool does when the name is taken.
    Some names have underscores (``Mary_Ann_...``). The first ``n_people`` persons are in ``train/``;
    ``n_report`` other persons fill ``val/``, and with ``test`` another ``n_report`` fill ``test/``, so
    the folders share no one. Returns the tree and each image's person (the name as written).
    """
    root = Path(root)
    splits: dict[str, list[tuple[Path, Any]]] = {}
    person: dict[Path, str] = {}
    folders = [("train", n_people), ("val", n_report)] + ([("test", n_report)] if test else [])
    p = 0
    for split, count in folders:
        splits[split] = []
        for _ in range(count):
            code = "".join(chr(ord("A") + int(d)) for d in f"{p:03d}")      # letters only: 007 -> AAH
            name = f"Mary_Ann_{code}" if p % 5 == 0 else f"Pat{code.capitalize()}Lee"
            gender, born = p % 2, 20 + (7 * p) % 50
            for k in range(n_images):
                glued = f"{(37 * p + 101 * k) % 9999 + 1}" if k else ""
                age = born + 3 * k
                path = write_image(root / split / f"{age}_{gender}_{name}{glued}.jpg", seed=1000 * p + k)
                splits[split].append((path, (age, gender)))
                person[path] = name
            p += 1
    return Written(root, splits), person

"""What every dataset loader returns: labelled images per task, lazily decoded.

A loader only finds files and labels; decoding, resizing and augmentation happen later
(``mtl_cluster.train.data.transforms``) so every format takes the same path into the model.
"""
from __future__ import annotations

import hashlib
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

from ...errors import DataError

# What a decoder may raise for an unreadable file: the sample is skipped and counted, never fatal.
UNREADABLE = (OSError, UnidentifiedImageError, ValueError, SyntaxError)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def scan_images(folder: Path) -> tuple[list[Path], int]:
    """Image files directly in ``folder`` sorted by name, and how many were zero-byte (left out).

    Zero-byte files are what an interrupted copy leaves; they can never decode, so they are counted
    once here instead of failing at every epoch. Hidden files (macOS ``._x.jpg``) and other suffixes
    are ignored; nothing is opened, so a 150k-file folder costs one stat per file.
    """
    paths: list[Path] = []
    empty = 0
    with os.scandir(folder) as entries:
        for entry in entries:
            name = entry.name
            if name.startswith(".") or not name.lower().endswith(IMAGE_SUFFIXES) or not entry.is_file():
                continue
            if entry.stat().st_size == 0:
                empty += 1
            else:
                paths.append(Path(entry.path))
    paths.sort()
    return paths, empty


class ImageSet(ABC):
    """A labelled image list. ``image(i)`` decodes sample i to an RGB PIL image (may raise UNREADABLE)."""

    labels: np.ndarray  # float64: class index for gender/smile/emotion, age in years for age
    sigma: np.ndarray | None = None  # per-sample label std (ChaLearn's stdv), for the epsilon-error; else None

    def __len__(self) -> int:
        return len(self.labels)

    @abstractmethod
    def image(self, i: int) -> Image.Image:
        """Decode sample i; each storage (files, arrays) says how."""

    def describe(self, i: int) -> str:
        """Where sample i comes from, for skip reports."""
        return f"#{i}"

    def identity(self) -> str:
        """A short hash of what the split is (its size, labels and sample names), not where it lives.

        Stored in checkpoints so a run does not silently resume on other data; cheap (no file is opened)
        and the same after the data is copied to another root or cluster.
        """
        h = hashlib.blake2b(digest_size=8)
        h.update(np.ascontiguousarray(self.labels, dtype=np.float64).tobytes())
        h.update("\0".join(self.describe(i).rsplit("/", 1)[-1] for i in range(len(self))).encode())
        return h.hexdigest()


class FileImages(ImageSet):
    """Images stored one per file (JPEG/PNG trees)."""

    def __init__(self, paths: Sequence[Path], labels: Sequence[float] | np.ndarray,
                 sigma: Sequence[float] | np.ndarray | None = None):
        if len(paths) != len(labels) or (sigma is not None and len(sigma) != len(labels)):
            raise ValueError("paths, labels and sigma differ in length")
        self.paths = [Path(p) for p in paths]
        self.labels = np.asarray(labels, dtype=np.float64)
        if sigma is not None:
            self.sigma = np.asarray(sigma, dtype=np.float64)

    def subset(self, keep: Sequence[bool]) -> FileImages:
        """The samples where ``keep`` is true, in order (labels and sigma follow their files)."""
        idx = np.flatnonzero(np.asarray(keep, dtype=bool))
        return FileImages([self.paths[i] for i in idx], self.labels[idx],
                          None if self.sigma is None else self.sigma[idx])

    def image(self, i: int) -> Image.Image:
        with Image.open(self.paths[i]) as im:
            return im.convert("RGB")

    def describe(self, i: int) -> str:
        return str(self.paths[i])


class ArrayImages(ImageSet):
    """Images held in memory as uint8 arrays: (N, H, W) grey (replicated to RGB) or (N, H, W, 3)."""

    def __init__(self, pixels: np.ndarray, labels: Sequence[float] | np.ndarray):
        if pixels.dtype != np.uint8 or pixels.ndim not in (3, 4):
            raise ValueError(f"expected uint8 (N,H,W) or (N,H,W,3) pixels, got {pixels.dtype} {pixels.shape}")
        if len(pixels) != len(labels):
            raise ValueError("pixels and labels differ in length")
        self.pixels = pixels
        self.labels = np.asarray(labels, dtype=np.float64)

    def image(self, i: int) -> Image.Image:
        return Image.fromarray(self.pixels[i]).convert("RGB")


@dataclass
class TaskData:
    """One task's three splits and where they came from (for tables and logs).

    ``val`` is the split epochs and models are selected on, ``test`` the one the reported numbers come
    from; keeping them apart is what makes the reported number an unbiased estimate.
    """

    task: str                    # gender | smile | emotion | age
    dataset: str                 # name used in table headers: ChaLearn_2016, FER_2013, IMDB-WIKI, synthetic
    train: ImageSet
    val: ImageSet                # the SELECT split: epochs/models are chosen on it
    test: ImageSet               # the REPORT split: the table's numbers come from it
    val_split: str               # which split ``val`` is: "TRAIN hold-out 10%", PublicTest, valid, val, ...
    test_split: str              # which split ``test`` is: VALID, PrivateTest, test, val, ...
    classes: dict[str, int] = field(default_factory=dict)  # folder/class name -> label, when folders name them
    skipped_at_load: int = 0     # files dropped while indexing (zero-byte, unparsable rows)
    source: str = ""             # the path it was read from


# --- the hashed hold-out: a validation split carved out of TRAIN where a dataset has none ---------
#
# A hold-out key names what must never sit on both sides of a split, and it is the same for every task
# that sees the thing. ChaLearn: an image's file name alone, not its class folder: the group's gender,
# smile and age copies hold the same images under the same file names in different class folders, so
# keying by ``female/x.jpg`` gave each task its own hold-out and most of smile's validation images were
# images the shared trunk trained on for gender. IMDB-WIKI: the person, so that no one is in train and
# in a hashed validation or test split. Keys are never paths with the data root (copies must agree).

def _unit(key: str, salt: str) -> int:
    """64-bit blake2b of ``salt NUL key``: the same on every run, machine and Python (unlike hash())."""
    return int.from_bytes(hashlib.blake2b(f"{salt}\0{key}".encode(), digest_size=8).digest(), "big")


def in_holdout(key: str, fraction: float, salt: str = "holdout") -> bool:
    """Whether ``key`` is held out: its salted hash, as a fraction of 2**64, is below ``fraction``.

    A key is what must stay on one side (an image's file name, a person), never a path with the data
    root or a class folder in it. Each key decides alone, so adding or removing a file never moves
    another one between the splits, and two tasks that see the same key always agree on it.
    """
    return _unit(key, salt) / 2.0**64 < fraction


def split_holdout(keys: Sequence[str], fraction: float, salt: str = "holdout") -> list[bool]:
    """The held-out mask of ``keys``: ``in_holdout`` of each, but never an empty side.

    With two or more distinct keys at least one key is held out (the smallest hash, if the threshold
    picks none) and at least one stays for training (the largest hash, if it picks all). A key that
    repeats (the same file name in two class folders, several images of one person) is decided once:
    all its entries are on the same side, the forcing included. The forcing picks by hash, so two tasks
    with the same set of keys still agree; with a single distinct key nothing is held out.
    """
    units = [_unit(k, salt) for k in keys]
    mask = [u / 2.0**64 < fraction for u in units]
    if len(set(keys)) < 2:
        return [False] * len(keys)
    if not any(mask):
        lowest = keys[units.index(min(units))]
        mask = [k == lowest for k in keys]
    if all(mask):
        highest = keys[units.index(max(units))]
        mask = [k != highest for k in keys]
    return mask


def percent(fraction: float) -> str:
    """0.1 -> '10%', 0.025 -> '2.5%': a split's human name."""
    return f"{round(fraction * 100, 4):g}%"


def hold_out(images: FileImages, keys: Sequence[str], fraction: float, where: str,
             salt: str = "holdout", key_name: str = "file names") -> tuple[FileImages, FileImages]:
    """(train, held-out) of ``images`` by ``split_holdout`` of their keys (one per image; see there);
    a one-line DataError if ``where`` has too few images, or too few distinct ``key_name``, to leave
    both sides non-empty."""
    mask = split_holdout(keys, fraction, salt)
    if not any(mask):
        distinct = len(set(keys))
        of = f" ({distinct} distinct {key_name})" if distinct != len(images) else ""
        raise DataError(f"{where} has {len(images)} usable image(s){of}: too few to hold out a validation "
                        f"split (data.holdout_fraction={fraction:g})")
    return images.subset([not m for m in mask]), images.subset(mask)

"""Shared pieces of the benchmarks: realistic on-disk data, timers, a result line. Not part of the test suite."""
from __future__ import annotations

import csv
import os
import sys
import time
import zlib
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mtl_cluster.train.data.synthetic import synthetic_sample  # noqa: E402

JPEG_SIDE = 250   # the group's aligned ChaLearn faces are about this size


def write_jpegs(folder: Path, n: int, seed: int = 0, side: int = JPEG_SIDE) -> list[Path]:
    """``n`` synthetic faces as JPEG files (quality 90), like the ChaLearn copies."""
    folder.mkdir(parents=True, exist_ok=True)
    pixels, _ = synthetic_sample(seed, n, side, "train")
    paths = []
    for i in range(n):
        p = folder / f"{i:06d}.jpg"
        if not p.exists():
            Image.fromarray(pixels[i]).save(p, quality=90)
        paths.append(p)
    return paths


def write_chalearn_tree(root: Path, task_dir: str, classes: tuple[str, ...], n_per_class: int) -> None:
    """``<task_dir>/{TRAIN,VALID}/<class>/*.jpg`` as the group's copy lays it out."""
    for split, n in (("TRAIN", n_per_class), ("VALID", max(2, n_per_class // 8))):
        for c, name in enumerate(classes):
            write_jpegs(root / task_dir / split / name, n, seed=zlib.crc32(f"{task_dir}{split}{c}".encode()) % 1000)


def write_fer_csv(path: Path, n_train: int, n_test: int) -> None:
    """A Kaggle-format fer2013.csv of 48x48 grey faces; the ``n_test`` rows alternate PublicTest/PrivateTest."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    grey, _ = synthetic_sample(7, n_train + n_test, 48, "train")
    rng = np.random.default_rng(0)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["emotion", "pixels", "Usage"])
        for i in range(n_train + n_test):
            usage = "Training" if i < n_train else ("PublicTest", "PrivateTest")[(i - n_train) % 2]  # val, test
            w.writerow([int(rng.integers(0, 7)), " ".join(map(str, grey[i].mean(-1).astype(np.uint8).ravel())), usage])


def write_study_data(root: Path, n_per_class: int) -> None:
    """ChaLearn gender/smile/age folders and FER2013: what the seed's multitask run reads."""
    write_chalearn_tree(root, "CVPR_GENDER_5_points", ("female", "male"), n_per_class)
    write_chalearn_tree(root, "CVPR_SMILE_5_points", ("non_smile", "smile"), n_per_class)
    write_chalearn_tree(root, "CVPR_AGE_5_points", ("8", "23", "41", "61"), n_per_class // 2)
    write_fer_csv(root / "fer2013" / "fer2013.csv", 4 * n_per_class, 64)


def timed(fn: Callable[[], Any], repeat: int = 1) -> float:
    """Best wall-clock seconds of ``repeat`` calls."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def machine() -> str:
    import torch
    return (f"{cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__}, "
            f"CUDA {'yes: ' + torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no'}")


def figure(number: int | str, title: str, value: float, goal: float | None, detail: str, share: bool = False,
           at_most: bool = False) -> str:
    """One result line: the figure (a ratio, or a share with ``share``) against its goal, then the absolute numbers.
    ``goal=None``: a measurement only, where the machine cannot tell the difference from its noise."""
    if goal is None:
        shown = f"{value:.2%}" if share else f"{value:.2f}x"
        return f"[{number}] {title}: {shown} (a measurement, no goal); {detail}"
    met = "met" if (value <= goal if at_most else value >= goal) else "NOT met"
    shown, wanted = (f"{value:.2%}", f"{goal:.0%}") if share else (f"{value:.2f}x", f"{goal:g}x")
    return f"[{number}] {title}: {shown} (goal {'<=' if at_most else '>='} {wanted}: {met}); {detail}"

"""Figure 1: images/s per CPU core of the data path, cache + batched augmentation vs per-sample PIL.

    .venv/bin/python bench/bench_data.py [--images 512] [--size 224]

One thread (torch and PIL), one process, so the numbers are per core. Baseline (the seed's way, still
the path for data that does not fit the cache): per sample, PIL decode of a 250 px JPEG, resize to
224, random crop with padding, flip, normalise (``TaskView``). New: the split decoded once into the
memory-mapped cache (build time reported apart: it is paid once per data set and size), then per
batch of 32 a gather from the cache and ``augment_batch``. Also FER2013-style 48 px grey faces
upsampled to 224, the seed's worst case. And [1c]: drawing synthetic faces (the --debug and demo data,
made at every run start) against that per-sample JPEG path: synthetic data must never be the slower one.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from common import figure, timed, write_jpegs

from mtl_cluster.train.data.base import ArrayImages, FileImages, ImageSet
from mtl_cluster.train.data.cache import open_cache
from mtl_cluster.train.data.synthetic import synthetic_sample
from mtl_cluster.train.data.transforms import CachedView, TaskView
from mtl_cluster.train.sampling import EpochBatches

BATCH = 32


def per_sample(images: ImageSet, size: int, batches: list[list[tuple[int, int]]]) -> None:
    view = TaskView(images, size)
    for batch in batches:
        torch.stack([view[key][0] for key in batch])


def cached(view: CachedView, batches: list[list[tuple[int, int]]]) -> None:
    for batch in batches:
        view.__getitems__(batch)


def measure(images: ImageSet, size: int, cache_dir: Path, rounds: int = 3) -> tuple[float, float, float]:
    """(per-sample images/s, cached images/s, cache build images/s), one thread.

    The two paths alternate for ``rounds`` and the best of each counts: on a shared machine, a burst of
    someone else's load then slows one round of both, not one path.
    """
    n = len(images)
    batches = list(EpochBatches(n, BATCH, seed=1, steps=n // BATCH))
    t_build = timed(lambda: open_cache(images, size, cache_dir, threads=1))
    dec = open_cache(images, size, cache_dir)
    view = CachedView(dec.pixels, dec.ok, images.labels, augment_here=True)
    cached(view, batches[:2])  # warm
    t_base = t_new = float("inf")
    for _ in range(rounds):
        t_base = min(t_base, timed(lambda: per_sample(images, size, batches)))
        t_new = min(t_new, timed(lambda: cached(view, batches)))
    count = len(batches) * BATCH
    return count / t_base, count / t_new, n / t_build


def main(argv: list[str] | None = None) -> list[str]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=512)
    ap.add_argument("--size", type=int, default=224)
    args = ap.parse_args(argv)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    lines = []
    with tempfile.TemporaryDirectory(prefix="bench_data_") as tmp:
        tmp = Path(tmp)
        jpegs = FileImages(write_jpegs(tmp / "jpg", args.images), np.zeros(args.images))
        base, new, build = measure(jpegs, args.size, tmp / "cache")
        lines.append(figure(1, f"data path, {args.size} px from 250 px JPEGs, per core", new / base, 10,
                            f"cache + batched augmentation {new:.0f} img/s vs per-sample PIL {base:.0f} img/s; "
                            f"one-time cache build {build:.0f} img/s"))
        grey = (np.random.default_rng(0).integers(0, 256, (args.images, 48, 48))).astype(np.uint8)
        fer = ArrayImages(grey, np.zeros(args.images))
        base, new, build = measure(fer, args.size, tmp / "cache")
        lines.append(figure("1b", f"data path, FER 48 px grey upsampled to {args.size}, per core", new / base, 10,
                            f"cache + batched augmentation {new:.0f} img/s vs per-sample PIL {base:.0f} img/s; "
                            f"one-time cache build {build:.0f} img/s"))
        base, _, _ = measure(jpegs, 64, tmp / "cache64", rounds=1)
        t0 = time.perf_counter()
        synthetic_sample(11, args.images, 64, "train")
        drawn = args.images / (time.perf_counter() - t0)
        lines.append(figure("1c", "synthetic faces drawn at 64 px vs per-sample JPEG loading at 64 px, per core",
                            drawn / base, 1, f"synthetic {drawn:.0f} img/s vs JPEG {base:.0f} img/s"))
    torch.set_num_threads(threads)   # run_all goes on in this process
    for line in lines:
        print(line, flush=True)
    return lines


if __name__ == "__main__":
    main()

"""The pre-decoded image cache: each split decoded once to uint8 at the training size, memory-mapped.

Decoding and resizing a JPEG per sample per epoch costs more CPU than the model on a GPU; decoding
once makes every later epoch (and every run on the same data and size) a memory copy. The cache
holds exactly what the per-sample path computes before its float steps (``transforms.decode``), so
using it never changes results.

Pixels are stored planar, N x 3 x size x size: crops, flips and the float cast then copy whole rows of
one channel (vectorised) instead of 3-byte pixels. Files: ``<cache_dir>/<key>.npy`` (the pixels) and
``<key>.json`` (meta, written last: a cache without it, or whose pixel file has the wrong length, is rebuilt,
never trusted). The key hashes what the pixels come from (``fingerprint``: the split's content, not where it
lives), the size and ``CACHE_VERSION``, so changed data gets a new cache and a copied data folder (node-local
scratch, another cluster) finds its old one. Both files are written to temp names and
renamed, so two array tasks building the same cache at once each produce a whole, identical file. Both get the
mode a plain ``open()`` would give them (``fsio.temp_file``): a cache beside shared data is for the whole group,
as the umask decides.
"""
from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ...fsio import atomic_write_text, temp_file
from .base import UNREADABLE, ArrayImages, FileImages, ImageSet
from .transforms import decode

CACHE_VERSION = 3   # 2: planar layout; 3: keyed by content (relative names, sizes, head/tail bytes)
CHUNK = 256
HEAD_TAIL = 4096   # bytes hashed at each end of every image file (one page each: the cost is the open)
Report = Callable[[int, int], None]   # (done, total) while building


@dataclass
class Decoded:
    """A split decoded at one size: ``pixels[i]`` (uint8 3 x size x size) valid where ``ok[i]``."""

    pixels: np.ndarray
    ok: np.ndarray
    key: str
    built: bool = False          # decoded now (True) or read from disk / used as is (False)


def fingerprint(images: ImageSet, threads: int = 4) -> str:
    """What the split's pixels come from, wherever the files live: a hash of the content's identity.

    For files: each file's name relative to the split's common folder, its size, and a hash of its first
    and last ``HEAD_TAIL`` bytes (the whole file when smaller); for in-memory data, the pixel bytes.
    Absolute paths and mtimes are left out on purpose: a copy of the data folder (rsync to node-local
    scratch, ``cp`` without -p, another cluster) is the same data and must find the same cache. Why not a
    full hash: 100k JPEGs of ~20 KB would be 2 GB read over the network file system at every job start; the
    head/tail pages cost one open and two reads per file, in threads (measured: 20k files in 2.6 s on a 2-core
    machine under load, page cache warm; stat alone is a fifth of that), and
    catch what really happens to image files (re-encoded, truncated, replaced: the size or the entropy-coded
    tail changes; a JPEG's head holds its tables and dimensions). A file edited only in its middle at the
    same size would keep its key: no tool does that to a JPEG. Labels are not hashed: the cache holds pixels
    only, and the tasks that share files (IMDB-WIKI gender and age) share one cache.
    """
    h = hashlib.blake2b(digest_size=16)
    h.update(type(images).__name__.encode())
    if isinstance(images, FileImages):
        names = [str(p) for p in images.paths]
        base = os.path.commonpath([os.path.dirname(n) for n in names]) if names else ""
        cut = len(base.rstrip(os.sep)) + 1
        with ThreadPoolExecutor(max(8, threads)) as pool:   # waiting on the file system, not the CPU: 8 at least
            for name, part in zip(names, pool.map(_content_part, names)):
                h.update(name[cut:].replace(os.sep, "/").encode() + b"\0" + part + b"\n")
    elif isinstance(images, ArrayImages):
        h.update(repr(images.pixels.shape).encode())
        h.update(np.ascontiguousarray(images.pixels).data)
    else:
        raise TypeError(f"no fingerprint for {type(images).__name__}")
    return h.hexdigest()


def _content_part(path: str) -> bytes:
    """``size:hash of the head and tail pages`` of one file, or ``missing`` (it will count as unreadable)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return b"missing"
    try:
        size = os.fstat(fd).st_size
        data = os.pread(fd, HEAD_TAIL, 0) + os.pread(fd, HEAD_TAIL, max(HEAD_TAIL, size - HEAD_TAIL))
    except OSError:
        return b"missing"
    finally:
        os.close(fd)
    return b"%d:" % size + hashlib.blake2b(data, digest_size=8).digest()


def cache_key(images: ImageSet, size: int, threads: int = 4) -> str:
    """The cache file's name: the source's content fingerprint, the size and the loader version."""
    return hashlib.blake2b(f"{fingerprint(images, threads)}:{size}:{CACHE_VERSION}".encode(),
                           digest_size=12).hexdigest()


def decoded_bytes(images: ImageSet, size: int) -> int:
    """Bytes the split takes decoded at ``size``: what the budget of ``data_cache: auto`` is checked against."""
    return len(images) * size * size * 3


def in_memory(images: ImageSet, size: int) -> Decoded | None:
    """In-memory RGB arrays already at the training size (synthetic data) need no decoding: made planar in memory."""
    if isinstance(images, ArrayImages) and images.pixels.shape[1:] == (size, size, 3):
        return Decoded(np.ascontiguousarray(images.pixels.transpose(0, 3, 1, 2)), np.ones(len(images), bool),
                       key="in-memory")
    return None


def open_cache(images: ImageSet, size: int, cache_dir: Path, report: Report | None = None,
               threads: int = 4, key: str | None = None) -> Decoded:
    """The split's cache under ``cache_dir``: read if whole and current, else built (atomically) first.

    ``key``: ``cache_key(images, size)`` when the caller has it already (it reads every file's head and tail).
    """
    found = in_memory(images, size)
    if found is not None:
        return found
    key = key or cache_key(images, size, threads)
    cache_dir = Path(cache_dir).expanduser()
    found = read_cache(cache_dir, key, len(images), size)
    if found is not None:
        return found
    return _build(images, size, cache_dir, key, report, threads)


def _paths(cache_dir: Path, key: str) -> tuple[Path, Path]:
    return cache_dir / f"{key}.npy", cache_dir / f"{key}.json"


def read_cache(cache_dir: Path, key: str, n: int, size: int) -> Decoded | None:
    """A finished cache (meta present, pixel file of the exact length), or None."""
    npy, meta_path = _paths(cache_dir, key)
    try:
        meta = json.loads(meta_path.read_text())
        if meta.get("key") != key or meta.get("n") != n or meta.get("size") != size \
                or npy.stat().st_size != meta.get("bytes"):
            return None
        pixels = np.load(npy, mmap_mode="r")
    except (OSError, ValueError):
        return None
    if pixels.shape != (n, 3, size, size) or pixels.dtype != np.uint8:
        return None
    ok = np.ones(n, bool)
    ok[meta.get("unreadable", [])] = False
    return Decoded(pixels, ok, key)


def _build(images: ImageSet, size: int, cache_dir: Path, key: str, report: Report | None,
           threads: int) -> Decoded:
    """Decode every sample into a temp .npy, then rename it and write the meta (the commit mark)."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    n = len(images)
    npy, meta_path = _paths(cache_dir, key)
    fd, tmp = temp_file(npy, prefix=f".{key}.", suffix=".npy.tmp")   # open_memmap's "w+" keeps its mode
    os.close(fd)
    try:
        pixels = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(n, 3, size, size))
        ok = np.ones(n, bool)

        def one(i: int) -> None:   # PIL releases the GIL while decoding and resizing
            try:
                pixels[i] = decode(images, i, size).transpose(2, 0, 1)
            except UNREADABLE:
                pixels[i] = 0
                ok[i] = False

        with ThreadPoolExecutor(max(1, threads)) as pool:
            for start in range(0, n, CHUNK):
                list(pool.map(one, range(start, min(start + CHUNK, n))))
                if report:
                    report(min(start + CHUNK, n), n)
        pixels.flush()
        pixels = None   # type: ignore[assignment]  # unmap before the fsync and rename
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, npy)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    atomic_write_text(meta_path, json.dumps({
        "key": key, "n": n, "size": size, "bytes": npy.stat().st_size, "version": CACHE_VERSION,
        "unreadable": np.flatnonzero(~ok).tolist()}))
    found = read_cache(cache_dir, key, n, size)
    if found is None:   # pragma: no cover - someone removed it between our rename and read
        raise OSError(f"image cache {npy} vanished right after it was built")
    found.built = True
    return found


"""The pre-decoded image cache: each split decoded once to uint8 at the training size, memory-mapped.

Decoding and resizing a JPEG per sample per epoch costs more CPU than the model on a GPU; decoding
once makes every later epoch (and every run on the same data and size) a memory copy. The cache
holds exactly what the per-sample path computes before its float steps (``transforms.decode``), so
using it never changes results.

Pixels are stored planar, N x 3 x size x size: crops, flips and the float cast then copy whole rows of
one channel (vectorised) instead of 3-byte pixels. Files: ``<cache_dir>/<key>.npy`` (the pixels) and
``<key>.json`` (meta, written last: a cache without it, or whose pixel file has the wrong length, is rebuilt,
never trusted). The key hashes the source (file paths, sizes, mtimes; or the pixel bytes of in-memory data), the size
and ``CACHE_VERSION``, so changed data gets a new cache. Both files are written to temp names and
renamed, so two array tasks building the same cache at once each produce a whole, identical file.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ...fsio import atomic_write_text
from .base import UNREADABLE, ArrayImages, FileImages, ImageSet
from .transforms import decode

CACHE_VERSION = 2   # 2: planar layout
CHUNK = 256
Report = Callable[[int, int], None]   # (done, total) while building


@dataclass
class Decoded:
    """A split decoded at one size: ``pixels[i]`` (uint8 3 x size x size) valid where ``ok[i]``."""

    pixels: np.ndarray
    ok: np.ndarray
    key: str
    built: bool = False          # decoded now (True) or read from disk / used as is (False)


def fingerprint(images: ImageSet) -> str:
    """What the split's pixels come from: file paths + sizes + mtimes, or a hash of in-memory pixels."""
    h = hashlib.blake2b(digest_size=16)
    h.update(type(images).__name__.encode())
    if isinstance(images, FileImages):
        for p in images.paths:
            try:
                st = os.stat(p)
                h.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
            except OSError:
                h.update(f"{p}\0missing\n".encode())
    elif isinstance(images, ArrayImages):
        h.update(repr(images.pixels.shape).encode())
        h.update(np.ascontiguousarray(images.pixels).data)
    else:
        raise TypeError(f"no fingerprint for {type(images).__name__}")
    return h.hexdigest()


def cache_key(images: ImageSet, size: int) -> str:
    """The cache file's name: source fingerprint, size and loader version."""
    return hashlib.blake2b(f"{fingerprint(images)}:{size}:{CACHE_VERSION}".encode(), digest_size=12).hexdigest()


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
               threads: int = 4) -> Decoded:
    """The split's cache under ``cache_dir``: read if whole and current, else built (atomically) first."""
    found = in_memory(images, size)
    if found is not None:
        return found
    key = cache_key(images, size)
    cache_dir = Path(cache_dir).expanduser()
    found = _read(cache_dir, key, len(images), size)
    if found is not None:
        return found
    return _build(images, size, cache_dir, key, report, threads)


def _paths(cache_dir: Path, key: str) -> tuple[Path, Path]:
    return cache_dir / f"{key}.npy", cache_dir / f"{key}.json"


def _read(cache_dir: Path, key: str, n: int, size: int) -> Decoded | None:
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
    fd, tmp = tempfile.mkstemp(prefix=f".{key}.", suffix=".npy.tmp", dir=cache_dir)
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
        _shareable(Path(tmp))
        npy, meta_path = _paths(cache_dir, key)
        os.replace(tmp, npy)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    atomic_write_text(meta_path, json.dumps({
        "key": key, "n": n, "size": size, "bytes": npy.stat().st_size, "version": CACHE_VERSION,
        "unreadable": np.flatnonzero(~ok).tolist()}))
    _shareable(meta_path)
    found = _read(cache_dir, key, n, size)
    if found is None:   # pragma: no cover - someone removed it between our rename and read
        raise OSError(f"image cache {npy} vanished right after it was built")
    found.built = True
    return found


def _shareable(path: Path) -> None:
    """Temp files are created 0600; a cache beside shared data is for the whole group (the umask decides)."""
    os.chmod(path, 0o666 & ~_umask())


def _umask() -> int:
    """The process umask, read without setting it where Linux allows (os.umask is process-wide)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask

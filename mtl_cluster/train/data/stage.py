"""``data.stage_to``: a split's pre-decoded cache copied to node-local disk at job start, once per node.

Why the cache and not the image files: training reads the cache only (``cache.py``), and it is one
sequential file per split (N x 3 x size x size bytes) where the images are up to 150k small files, whose
metadata round trips are what a network file system is slow at. Copying it is one stream and leaves the
images where they are; the split's identity (and so every checkpoint) does not change, because the
samples, their names and labels are the same objects, only their decoded pixels are read from elsewhere.

Layout under ``<stage_to>/mtl_stage/``: ``<key>/`` (the cache's two files, as in the shared cache folder),
``<key>.lock`` (flock: two array tasks on one node copy once, the second waits and then uses the copy),
``staged.jsonl`` (one line per copy made: the record of what this node copied, when and for whom). A copy
is made in ``.<key>.tmp-<host>-<pid>/`` and renamed to ``<key>/`` when whole, so a killed copy leaves only a
temp folder, which is never read and is removed by the next task that takes the lock.
"""
from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import socket
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from ...errors import DataError
from ...fsio import append_line, fsync_dir
from .base import ImageSet
from .cache import Decoded, Report, cache_key, decoded_bytes, in_memory, open_cache, read_cache

STAGE_FOLDER = "mtl_stage"
RECORD = "staged.jsonl"
VARIABLE = re.compile(r"\$(\w+)|\$\{(\w+)\}")   # $NAME or ${NAME}, as the shell writes them


@dataclass
class Staged:
    """A split's cache as the run reads it, and what staging did (for the log and status.json)."""

    decoded: Decoded
    note: str


def stage_root(spec: str, env: dict[str, str] | None = None) -> Path:
    """``data.stage_to`` expanded here, in the job (``$TMPDIR`` is the node's), as ``<it>/mtl_stage``.

    A variable the job does not set, or a result that is not an absolute path, is one DataError line.
    """
    env = dict(os.environ if env is None else env)
    expanded = os.path.expanduser(spec)
    for _ in range(3):   # a value may name another variable
        expanded = VARIABLE.sub(lambda m: env.get(m.group(1) or m.group(2), m.group(0)), expanded)
    left = VARIABLE.search(expanded)
    if left:
        raise DataError(f"data.stage_to: {spec!r} names ${left.group(1) or left.group(2)}, which is not set in "
                        f"this job; set it in the profile's setup lines or give a path")
    if not os.path.isabs(expanded):
        raise DataError(f"data.stage_to: {spec!r} is {expanded!r} here, not an absolute path; give node-local "
                        f"scratch such as $TMPDIR or /tmp/$USER")
    return Path(expanded) / STAGE_FOLDER


def stage_cache(images: ImageSet, size: int, shared_dir: Path, root: Path, report: Report | None = None,
                threads: int = 4) -> Staged:
    """The split's cache read from ``root`` (node-local): copied there from ``shared_dir`` (built there first
    if missing; decoded straight onto the node where the shared folder cannot be written) unless a whole copy
    is on this node already. Too big for half the node's free disk: the shared cache, unstaged."""
    found = in_memory(images, size)
    if found is not None:
        return Staged(found, "in memory: nothing to stage")
    key = cache_key(images, size, threads)
    found = read_cache(root / key, key, len(images), size)
    if found is not None:
        return Staged(found, f"staged {key}: already on this node ({root})")
    root.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(root).free
    if decoded_bytes(images, size) > free / 2:
        dec = open_cache(images, size, shared_dir, report, threads, key)
        return Staged(dec, f"not staged: {decoded_bytes(images, size) / 2**30:.1f} GiB decoded > half the free "
                           f"disk of {root} ({free / 2**30:.1f} GiB); read from {shared_dir}")
    with _locked(root / f"{key}.lock"):
        found = read_cache(root / key, key, len(images), size)   # another task copied it while we waited
        if found is not None:
            return Staged(found, f"staged {key}: copied by another task on this node ({root})")
        _remove_leftovers(root, key)
        started = time.monotonic()
        tmp = root / f".{key}.tmp-{socket.gethostname()}-{os.getpid()}"
        tmp.mkdir()
        try:
            try:
                built = open_cache(images, size, shared_dir, report, threads, key).built
            except OSError as exc:   # a read-only data root: decode onto this node only
                how = f"decoded here (the shared cache in {shared_dir} cannot be written: {exc.strerror or exc})"
                open_cache(images, size, tmp, report, threads, key)
                copied = sum(p.stat().st_size for p in tmp.iterdir())
            else:
                how = "built in the shared cache, then copied" if built else "copied"
                copied = _copy_entry(shared_dir, tmp, key)
            fsync_dir(tmp)
            os.rename(tmp, root / key)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        fsync_dir(root)
        seconds = time.monotonic() - started
        append_line(root / RECORD, json.dumps({
            "key": key, "bytes": copied, "seconds": round(seconds, 3), "how": how.split(" (")[0],
            "from": str(shared_dir), "host": socket.gethostname(), "pid": os.getpid(),
            "job": os.environ.get("SLURM_JOB_ID"), "at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}))
    found = read_cache(root / key, key, len(images), size)
    if found is None:   # pragma: no cover - removed between our rename and read
        raise OSError(f"staged cache {root / key} vanished right after it was staged")
    return Staged(found, f"staged {key}: {how}, {copied / 2**20:.1f} MiB to {root} in {seconds:.1f} s")


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive flock on ``path`` (node-local disk: flock is reliable there), held while copying."""
    with open(path, "a+b") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _remove_leftovers(root: Path, key: str) -> None:
    """Temp folders of killed copies, and a ``<key>/`` that did not read back whole: never trusted, so removed.

    Called under the key's lock: no live task is writing them.
    """
    for tmp in root.glob(f".{key}.tmp-*"):
        shutil.rmtree(tmp, ignore_errors=True)
    if (root / key).exists():
        shutil.rmtree(root / key, ignore_errors=True)


def _copy_entry(shared_dir: Path, tmp: Path, key: str) -> int:
    """Copy ``<key>.npy`` then ``<key>.json`` (the commit mark) into ``tmp``, each fsynced; the bytes copied."""
    copied = 0
    for name in (f"{key}.npy", f"{key}.json"):
        shutil.copyfile(shared_dir / name, tmp / name)
        with open(tmp / name, "rb") as f:
            os.fsync(f.fileno())
        copied += (tmp / name).stat().st_size
    return copied

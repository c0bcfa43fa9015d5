"""Crash-safe file writes: another process never sees a half-written file.

Write to a temp file in the same folder, fsync, rename over the target, fsync the folder.

Modes: ``tempfile.mkstemp`` creates 0600 whatever the umask, and the rename would carry that onto config.yaml,
status.json, checkpoints, launch records, caches: on a group share nobody else could read them. So every temp
file that becomes a user-visible file is given, at once, the mode plain ``open(path, "w")`` would have given
(``temp_file``): a new file ``0o666 & ~umask`` (what ``cp`` or ``torch.save`` alone give), a replaced file its
old permission bits; never more open than that. Its group is the kernel's choice at creation (a setgid
folder's group), which the rename keeps and nothing here changes, except that a replaced file keeps its old
group where the writer may set it (``open(path, "w")`` would not have changed it either).
"""
from __future__ import annotations

import json
import os
import stat
import tempfile
from pathlib import Path
from typing import IO, Callable


def fsync_dir(folder: Path) -> None:
    """fsync a folder so a rename in it survives a crash (best effort: some file systems refuse)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def umask() -> int:
    """The process umask, read without changing it where Linux allows (``/proc/self/status``, Linux 4.7+).

    ``os.umask`` can only be read by setting it, and the umask is process-wide: a thread creating a file
    between the set and the restore (the checkpoint writer, the cache's decoder pool, a TensorBoard writer)
    would create it under the wrong mask. The ``os.umask`` round trip is the fallback where /proc cannot tell.
    """
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def created_mode(directory: bool = False) -> int:
    """The mode a plain ``open()`` (0o666) or ``mkdir`` (0o777, ``directory``) gives a new entry under the umask."""
    return (0o777 if directory else 0o666) & ~umask()


def temp_file(path: Path, prefix: str | None = None, suffix: str = ".tmp",
              mode_of: Path | None = None) -> tuple[int, str]:
    """A temp file in ``path``'s folder, to be renamed onto ``path``: ``(fd, name)`` as ``tempfile.mkstemp`` gives.

    Its mode is the one ``open(path, "w")`` would leave ``path`` with (mkstemp's 0600 is for private scratch
    files): ``path``'s own permission bits when it exists (and its group, where the writer may give it: a
    labmate resuming a run keeps its files in the run's group), else ``created_mode()``. ``prefix`` defaults to
    ``.<name>.``: hidden, and the name says whose temp it is. ``mode_of``: take mode and group from that file
    instead (a copy kept beside it, e.g. a ``.bak``, is no more open than the original).
    """
    path = Path(path)
    old: os.stat_result | None = None
    try:
        st = os.stat(path if mode_of is None else mode_of)
        old = st if stat.S_ISREG(st.st_mode) else None
    except OSError:
        pass
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}." if prefix is None else prefix, suffix=suffix,
                               dir=path.parent)
    try:
        if old is not None and old.st_gid != os.fstat(fd).st_gid:
            try:
                os.fchown(fd, -1, old.st_gid)   # before the chmod: a chown may clear mode bits
            except OSError:
                pass                            # not a group of ours: the folder's (or our) group it is
        os.fchmod(fd, stat.S_IMODE(old.st_mode) & 0o777 if old is not None else created_mode())
    except BaseException:
        os.close(fd)
        os.unlink(tmp)
        raise
    return fd, tmp


def atomic_write(path: Path, write: Callable[[IO[bytes]], object], mode_of: Path | None = None) -> None:
    """Call ``write(fileobj)`` on a temp file, then atomically replace ``path`` with it.

    On any failure (disk full included) the temp file is removed and ``path`` keeps its old content. The file
    gets the mode and group a plain ``open(path, "w")`` would give it (``temp_file``), or ``mode_of``'s.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = temp_file(path, mode_of=mode_of)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    fsync_dir(path.parent)


def atomic_write_text(path: Path, text: str, mode_of: Path | None = None) -> None:
    """Replace ``path`` with ``text`` (UTF-8) atomically (``mode_of``: as ``temp_file``)."""
    atomic_write(path, lambda f: f.write(text.encode("utf-8")), mode_of)


def atomic_write_json(path: Path, obj: object) -> None:
    """Replace ``path`` with ``obj`` as indented, key-sorted JSON atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def append_line(path: Path, line: str) -> None:
    """Append one full line and fsync, so a reader sees whole lines only (append-only logs)."""
    with open(path, "ab") as f:
        f.write((line.rstrip("\n") + "\n").encode("utf-8"))
        f.flush()
        os.fsync(f.fileno())

"""Which file system a path lives on, from /proc/self/mounts (Linux; "" elsewhere).

Reading many small files is latency-bound on a network file system (threads help) and CPU-bound on a
local one (threads only contend for the GIL), so readers pick their parallelism from this.
"""
from __future__ import annotations

import os
from pathlib import Path

MOUNTS = Path("/proc/self/mounts")
NETWORK_FS = frozenset({"nfs", "nfs4", "lustre", "gpfs", "beegfs", "cifs", "smb3", "ceph", "cephfs",
                        "panfs", "wekafs", "glusterfs", "fuse.glusterfs", "fuse.sshfs", "fuse.s3fs",
                        "9p", "afs", "pvfs2", "orangefs", "fuse.ceph-fuse"})


def _unescape(field: str) -> str:
    """/proc/mounts writes space, tab, newline and backslash in octal (``\\040``)."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field


def filesystem_type(path: Path, mounts_text: str | None = None) -> str:
    """The type of the mount holding ``path`` (longest matching mount point), "" when unknown."""
    if mounts_text is None:
        try:
            mounts_text = MOUNTS.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
    target = os.path.realpath(path)
    best, kind = -1, ""
    for line in mounts_text.splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        point = _unescape(parts[1])
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= best:      # later mounts over the same point win, as the kernel does
            best, kind = len(point), parts[2]
    return kind


def on_network_fs(path: Path) -> bool:
    """True when ``path`` is on NFS, Lustre, GPFS and the like."""
    return filesystem_type(path) in NETWORK_FS

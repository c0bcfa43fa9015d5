"""Which file system a path is on: the longest mount point holding it, octal escapes undone."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from mtl_cluster.collect.scan import default_workers
from mtl_cluster.collect.mounts import filesystem_type, on_network_fs

MOUNTS = """\
overlay / overlay rw,relatime 0 0
proc /proc proc rw 0 0
narvi-fs:/scratch /scratch nfs4 rw,vers=4.2 0 0
10.0.0.1@tcp:/lustre /scratch/lustre\\040data lustre rw 0 0
tmpfs /scratch/lustre\\040data/tmp tmpfs rw 0 0
tmpfs /scratchy tmpfs rw 0 0
"""


@pytest.mark.parametrize("path, kind", [
    ("/home/me/results", "overlay"),
    ("/scratch", "nfs4"),
    ("/scratch/study/results", "nfs4"),
    ("/scratchy/results", "tmpfs"),                       # a prefix of the name is not a parent folder
    ("/scratch/lustre data/results", "lustre"),           # \\040 is a space
    ("/scratch/lustre data/tmp/x", "tmpfs"),              # the deepest mount wins
])
def test_longest_mount_point_holding_the_path(path: str, kind: str) -> None:
    assert filesystem_type(Path(path), MOUNTS) == kind


def test_a_mount_over_the_same_point_hides_the_earlier_one() -> None:
    assert filesystem_type(Path("/data/x"), "a /data ext4 rw 0 0\nb /data nfs rw 0 0\n") == "nfs"


def test_real_mounts_local_disk_reads_with_one_thread(tmp_path: Path) -> None:
    kind = filesystem_type(tmp_path)
    assert kind and not on_network_fs(tmp_path), kind     # CI's temp folder is on a local disk
    assert default_workers(tmp_path) == 1


def test_real_tmpfs_mount_is_seen(tmp_path: Path) -> None:
    point = tmp_path / "with space"
    point.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(point)], capture_output=True,
                         text=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {res.stderr.strip()}")
    try:
        assert filesystem_type(point / "results") == "tmpfs"
        assert filesystem_type(tmp_path) == filesystem_type(tmp_path.parent)   # beside it: unchanged
    finally:
        subprocess.run(["umount", str(point)], check=True)

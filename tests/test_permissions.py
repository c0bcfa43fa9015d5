"""Files a group can read (issue 24): everything the system writes follows the user's umask, as ``cp`` or
``torch.save`` alone would, and a setgid group folder's group; nothing is more open than the umask allows.

Each writer runs in a subprocess whose umask is set in ``preexec_fn`` (this process's umask is never changed):
a real tiny run and its launch record (``mtl-launch --debug``, the trainer on synthetic data), a launch journal,
the collector's own outputs, and a data cache. Where this machine lets the test make users (root, useradd), a
labmate collects the table as another user: fine under umask 022, one clear line under 077; and in a setgid
group folder written under umask 027, a member of the group collects and an outsider cannot.
"""
from __future__ import annotations

import functools
import grp
import json
import os
import secrets
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterator

import pytest
from conftest import REPO, run_cli

BIN = Path(sys.executable).parent
MASKS = (0o022, 0o002, 0o077)
# what one finished run folder holds (tensorboard/ holds an events file; checkpoints/ the newest checkpoint)
RUN_FILES = {"config.yaml", "status.json", "summary.json", "predictions.json", "metrics.jsonl", "data.json",
             "log.txt", "timings.jsonl", "attempts.jsonl", ".lock", ".lock.log"}


def _umasked(mask: int, cmd: list[str], **kw) -> subprocess.CompletedProcess:
    """``cmd`` in a child process under ``mask`` (set between fork and exec: this process keeps its own)."""
    return run_cli(cmd, preexec_fn=lambda: os.umask(mask), **kw)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def _tree(*roots: Path) -> tuple[list[Path], list[Path]]:
    """(files, folders) under ``roots`` (the roots themselves among the folders)."""
    files, folders = [], []
    for root in roots:
        folders.append(root)
        for p in sorted(root.rglob("*")):
            (folders if p.is_dir() else files).append(p)
    return files, folders


def _modes_follow(mask: int, *roots: Path) -> None:
    """Every file is ``0o666 & ~mask``, every folder ``0o777 & ~mask`` (what open() and mkdir give)."""
    files, folders = _tree(*roots)
    assert files
    wrong = [f"{oct(_mode(p))} {p}" for p in files if _mode(p) != 0o666 & ~mask]
    wrong += [f"{oct(_mode(p))} {p}/" for p in folders if _mode(p) & 0o777 != 0o777 & ~mask]
    assert not wrong, f"umask {mask:03o}: expected files {0o666 & ~mask:o}, folders {0o777 & ~mask:o}:\n" + \
        "\n".join(wrong)
    if mask & 0o077 == 0o077:
        assert not [p for p in files + folders if _mode(p) & 0o077], "group or others can read under umask 077"


# -- the ground floor: fsio -------------------------------------------------------------------------------
def test_umask_is_read_without_changing_it_and_gives_the_mode_open_would() -> None:
    code = ("import os; from mtl_cluster import fsio; "
            "print(fsio.umask(), fsio.created_mode(), fsio.created_mode(directory=True), "
            "fsio.umask(), os.umask(0))")
    res = _umasked(0o027, [sys.executable, "-c", code])
    assert res.returncode == 0, res.stderr
    assert [int(x) for x in res.stdout.split()] == [0o027, 0o640, 0o750, 0o027, 0o027]


def test_atomic_writes_create_with_the_umask_and_keep_a_replaced_files_mode_and_group(tmp_path: Path) -> None:
    """A new file: ``0o666 & ~umask``. A replaced one keeps its permission bits and group, as ``open(path, "w")``
    would (so an owner's ``chmod -R g+rX`` survives the next status.json); no temp file is left."""
    g = _group() if os.geteuid() == 0 else None
    code = f"""
import os
from pathlib import Path
from mtl_cluster.fsio import atomic_write_json, atomic_write_text
d = Path({str(tmp_path)!r})
atomic_write_text(d / "new.txt", "a")
atomic_write_text(d / "kept.txt", "a"); os.chmod(d / "kept.txt", 0o640); atomic_write_json(d / "kept.txt", [1])
atomic_write_text(d / "group.txt", "a"); os.chown(d / "group.txt", -1, {g.gr_gid if g else -1})
atomic_write_text(d / "group.txt", "b")
"""
    res = _umasked(0o002, [sys.executable, "-c", code])
    assert res.returncode == 0, res.stderr
    assert _mode(tmp_path / "new.txt") == 0o664
    assert _mode(tmp_path / "kept.txt") == 0o640 and json.loads((tmp_path / "kept.txt").read_text()) == [1]
    assert (tmp_path / "group.txt").read_text() == "b" and _mode(tmp_path / "group.txt") == 0o664
    if g is not None:   # root may give a file any group: the replacement keeps it
        assert (tmp_path / "group.txt").stat().st_gid == g.gr_gid
    assert sorted(p.name for p in tmp_path.iterdir()) == ["group.txt", "kept.txt", "new.txt"]


# -- a run, its launch record, the collector's outputs ------------------------------------------------------
@pytest.fixture(scope="module")
def shared() -> Iterator[Path]:
    """A folder other users may enter (pytest's own tmp folders are 0700), removed at the end."""
    base = Path(tempfile.mkdtemp(prefix="mtl-perm-", dir="/tmp"))
    os.chmod(base, 0o755)
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


_LAUNCHED: set[Path] = set()


def _launch(shared: Path, mask: int, name: str | None = None) -> Path:
    """A tiny real run launched locally (``mtl-launch --debug``: the trainer on synthetic data) under ``mask``
    into ``<shared>/<name>/{results,jobs}`` (made 0755 first, so only what the launch makes follows the umask);
    then a launch journal (what a Slurm launch keeps while it submits) in the same jobs/. Once per folder."""
    base = shared / (name or f"u{mask:03o}")
    if base in _LAUNCHED:
        return base
    base.mkdir(exist_ok=True)
    os.chmod(base, os.stat(base).st_mode | 0o755)
    res = _umasked(mask, [str(BIN / "mtl-launch"), str(REPO / "experiments.yaml"), "--debug",
                          "--only", "AlexNet-Smile", "--results", str(base / "results"), "--jobs-dir",
                          str(base / "jobs"), "--logs-dir", str(base / "logs")], timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    code = ("import sys; from pathlib import Path; from mtl_cluster.launch.journal import Journal; "
            "Journal(Path(sys.argv[1]), 'test', sys.argv[2]).intent(0, 1, [], 10, 1)")
    res = _umasked(mask, [sys.executable, "-c", code, str(base / "jobs"), str(base / "logs")])
    assert res.returncode == 0, res.stderr
    _LAUNCHED.add(base)
    return base


@pytest.mark.parametrize("mask", MASKS, ids=lambda m: f"umask{m:03o}")
def test_a_run_its_launch_record_and_the_collected_table_follow_the_umask(shared: Path, mask: int) -> None:
    base = _launch(shared, mask)
    runs = [p.parent for p in (base / "results").rglob("config.yaml")]
    assert len(runs) == 1
    run = runs[0]
    names = {p.name for p in run.iterdir() if p.is_file()}
    assert RUN_FILES <= names, RUN_FILES - names
    assert list((run / "checkpoints").glob("ckpt-*.pt")) and list((run / "tensorboard").glob("events.out.*"))
    assert len(list((base / "jobs").glob("*.json"))) == 1, "no launch record"
    assert len(list((base / "jobs" / "journal").glob("*.jsonl"))) == 1, "no launch journal"
    _modes_follow(mask, base / "results", base / "jobs")

    out = base / f"collected{mask:03o}"   # the collector's outputs, written by the user under the same umask
    res = _umasked(mask, [str(BIN / "mtl-collect"), str(base / "results"), "--out", str(out / "table.html"),
                          "--plots", str(out / "plots"), "--no-image-tests"])
    assert res.returncode == 0, res.stderr
    assert (out / "table.html").exists() and list((out / "plots").glob("*.png"))
    _modes_follow(mask, out)


# -- the data cache --------------------------------------------------------------------------------------
@pytest.mark.parametrize("mask", MASKS, ids=lambda m: f"umask{m:03o}")
def test_a_data_cache_follows_the_umask(tmp_path: Path, mask: int) -> None:
    code = """
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from formats import write_image
from mtl_cluster.train.data.base import FileImages
from mtl_cluster.train.data.cache import open_cache
d = Path(sys.argv[2])
paths = [write_image(d / "img" / f"{i}.jpg", seed=i, size=24) for i in range(4)]
assert open_cache(FileImages(paths, list(range(4))), 16, d / "cache" / "sub").built
"""
    res = _umasked(mask, [sys.executable, "-c", code, str(REPO / "tests"), str(tmp_path)])
    assert res.returncode == 0, res.stderr
    files, _ = _tree(tmp_path / "cache")
    assert sorted(p.suffix for p in files) == [".json", ".npy"], files
    _modes_follow(mask, tmp_path / "cache")


# -- a setgid group folder, and other users ----------------------------------------------------------------
def _group() -> grp.struct_group | None:
    """A group that is not this user's own, for the group folder (``users`` where it exists)."""
    try:
        g = grp.getgrnam("users")
    except KeyError:
        return None
    return g if g.gr_gid != os.getgid() else None


@pytest.fixture(scope="module")
def group_share(shared: Path) -> Path:
    """``<shared>/group``: group ``users``, setgid (``chgrp users; chmod 2775``), as a lab's share is set up."""
    g = _group()
    if g is None or os.geteuid() != 0:
        pytest.skip("needs root and a group 'users' that is not root's own, to make a setgid group folder")
    folder = shared / "group"
    folder.mkdir()
    os.chown(folder, -1, g.gr_gid)
    os.chmod(folder, 0o2775)
    return folder


def test_a_setgid_group_folder_gives_its_group_to_every_file(group_share: Path) -> None:
    """Under umask 027 in a setgid folder: every file and folder has the folder's group (the kernel's choice at
    creation; the temp-and-rename writes keep it), folders carry the setgid bit on, files are 0640."""
    base = _launch(group_share, 0o027, name="lab")
    gid = group_share.stat().st_gid
    files, folders = _tree(base / "results", base / "jobs")
    assert len(files) > 15
    assert not [p for p in files + folders if p.stat().st_gid != gid], "a file lost the folder's group"
    assert not [p for p in folders if not p.stat().st_mode & stat.S_ISGID]
    assert not [p for p in files if _mode(p) != 0o640]


@pytest.fixture(scope="module")
def users() -> Iterator[tuple[str, str]]:
    """Two users made for the test and removed after: a labmate in group ``users``, an outsider who is not."""
    if os.geteuid() != 0 or not shutil.which("useradd") or not shutil.which("runuser") or _group() is None:
        pytest.skip("cannot make users here (needs root, useradd, runuser and a group 'users'): "
                    "collecting as another user is not tested")
    tag = secrets.token_hex(3)
    labmate, outsider = f"mtlmate{tag}", f"mtlout{tag}"
    made = []
    try:
        for cmd, user in ((["useradd", "-M", "-r", "-s", "/usr/sbin/nologin", "-g", "users", labmate], labmate),
                          (["useradd", "-M", "-r", "-s", "/usr/sbin/nologin", "-U", outsider], outsider)):
            res = subprocess.run(cmd, capture_output=True, text=True)
            if res.returncode != 0:
                pytest.skip(f"useradd failed ({res.stderr.strip()}): collecting as another user is not tested")
            made.append(user)
        yield labmate, outsider
    finally:
        for user in made:
            subprocess.run(["userdel", user], capture_output=True)
        subprocess.run(["groupdel", outsider], capture_output=True)   # userdel removes it where USERGROUPS_ENAB


@functools.cache
def _collector_for(user: str) -> list[str]:
    """How ``user`` runs mtl-collect: this venv's script, or, where its interpreter lives in a folder others may not
    enter (a pyenv under /root, 0700), another Python of the same version with this venv's packages added."""
    def runs(cmd: list[str]) -> bool:
        return subprocess.run(["runuser", "-u", user, "--", *cmd], capture_output=True, timeout=120).returncode == 0

    if runs([sys.executable, "-c", "pass"]):
        return [str(BIN / "mtl-collect")]
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    site = next(p for p in sys.path if p.endswith("site-packages") and p.startswith(str(BIN.parent)))
    for python in (f"/usr/bin/python{version}", f"/usr/local/bin/python{version}"):
        entry = [python, "-c", f"import site, sys; site.addsitedir({site!r}); sys.path.insert(0, {str(REPO)!r}); "
                               "sys.argv[0] = 'mtl-collect'; from mtl_cluster.cli.collect import entry_collect; "
                               "entry_collect()"]
        if os.path.exists(python) and runs([*entry, "--help"]):
            return entry
    pytest.skip(f"{user} cannot run this test's Python ({sys.executable} is in a folder others may not enter) "
                f"and no python{version} of theirs imports its packages: collecting as another user is not tested")


def _collect_as(user: str, results: Path, home: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["runuser", "-u", user, "--", "env", f"HOME={home}", "LANG=C.UTF-8",
                           *_collector_for(user), str(results), "--no-image-tests"],
                          cwd=home, capture_output=True, text=True, timeout=300)


def _shows_the_run(res: subprocess.CompletedProcess) -> None:
    """Exit 0, the run's row in the table, nothing listed as unreadable or damaged under it."""
    assert res.returncode == 0, res.stdout + res.stderr
    assert "1 run folders found, 1 in the table, 0 not in the table" in res.stdout, res.stdout
    assert "AlexNet-Smile_seed0" in res.stdout and "unreadable" not in res.stdout, res.stdout


def _one_clear_line(res: subprocess.CompletedProcess, path: Path) -> None:
    assert res.returncode == 2, res.stdout + res.stderr
    assert "Traceback" not in res.stderr and res.stderr.count("\n") == 1, res.stderr
    assert res.stderr.startswith(f"mtl-collect: error: {path}: permission denied"), res.stderr
    assert "chmod -R g+rX" in res.stderr, res.stderr


def test_a_labmate_collects_runs_written_under_umask_022_but_not_077(shared: Path, users: tuple[str, str]) -> None:
    _, outsider = users
    res = _collect_as(outsider, _launch(shared, 0o022) / "results", shared)
    _shows_the_run(res)
    closed = _launch(shared, 0o077) / "results"
    _one_clear_line(_collect_as(outsider, closed, shared), closed)


def test_in_a_group_folder_the_group_collects_and_others_cannot(group_share: Path, users: tuple[str, str]) -> None:
    labmate, outsider = users
    results = _launch(group_share, 0o027, name="lab") / "results"
    _shows_the_run(_collect_as(labmate, results, group_share))
    _one_clear_line(_collect_as(outsider, results, group_share), results)


def test_unreadable_run_files_are_listed_with_the_fix_and_nothing_readable_is_one_error(tmp_path: Path) -> None:
    """Run folders that can be listed but whose files cannot be read (runs written 0600 before this fix): listed
    under the table as unreadable, with the fix; when nothing else is readable, one error. As root every file is
    readable, so the read is made to fail."""
    from runfolders import config, write_run

    from mtl_cluster.collect import scan
    from mtl_cluster.errors import Unreadable

    closed = tmp_path / "results" / "b"
    closed.mkdir(parents=True)
    (closed / "config.yaml").write_text("name: b\n")
    (closed / "status.json").write_text(json.dumps({"state": "completed"}))
    real = Path.read_text

    def denied(self: Path, *a, **kw) -> str:
        if self.parent == closed:
            raise PermissionError(13, "Permission denied", str(self))
        return real(self, *a, **kw)

    fix = r"config.yaml: permission denied; its owner can run: chmod -R g\+rX "
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Path, "read_text", denied)
        with pytest.raises(Unreadable, match=f"^{closed}: {fix}{closed} "):
            scan.load_runs(tmp_path / "results")
        write_run(tmp_path / "results", config())
        runs = scan.load_runs(tmp_path / "results")
    assert len(runs.frame) == 1
    assert [(p.path, p.state) for p in runs.problems] == [(str(closed), "unreadable")]
    assert "chmod -R g+rX" in runs.problems[0].reason

"""``data.stage_to`` and the content-keyed image cache, on real files (tests/formats.py) and the real local Slurm.

A copy of the data folder finds its old cache; two array tasks on one node copy a split's cache once; a staged
run's metrics are byte-identical to the unstaged run's; a copy killed halfway leaves nothing a later task uses.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO
from formats import write_chalearn_imagefolder
from mtl_cluster.cli.train import train_main
from mtl_cluster.config import signature, train_config_from_dict
from mtl_cluster.errors import ConfigError, DataError, Interrupted
from mtl_cluster.train.data.base import FileImages
from mtl_cluster.train.data.cache import open_cache
from mtl_cluster.train.data.stage import RECORD, stage_cache, stage_root
from mtl_cluster.train.loop import run_training
from slurmkit import all_completed, dirs, require_cluster, specs, wait

GENDER = "CVPR_GENDER_5_points"
CONFIG = {"dataset": "CVPR_16_ChaLearn", "loss_weights": [1, 0, 0, 0], "image_size": 64, "batch_size": 4,
          "epoch": 2, "steps_per_epoch": 3, "device": "cpu"}


class CountingFiles(FileImages):
    """FileImages that count decodes: a reused cache decodes nothing."""

    decodes = 0

    def image(self, i: int):
        CountingFiles.decodes += 1
        return super().image(i)


def _images(folder: Path) -> CountingFiles:
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png") and p.stat().st_size)
    return CountingFiles(paths, [0.0] * len(paths))


def _copy_without_times(src: Path, dst: Path) -> None:
    """What rsync without -t or cp without -p does: same bytes, new mtimes, another absolute path."""
    shutil.copytree(src, dst, copy_function=shutil.copy)
    for p in dst.rglob("*"):
        os.utime(p, ns=(10**18, 10**18))


def _train(run: Path, root: Path, **data: str) -> dict:
    return run_training(train_config_from_dict({**CONFIG, "data": {"root": str(root), **data}}), run,
                        handle_signals=False)


def _train_at_one_thread(run: Path, root: Path) -> dict:
    """``_train`` with torch at one thread, as the study's jobs train: another thread count can move the last
    bits of a run (CPU kernels sum in another order), so byte comparisons with a job are made at its count."""
    import torch
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _train(run, root)
    finally:
        torch.set_num_threads(before)


def _perf(run: Path) -> dict[str, str]:
    return json.loads((run / "status.json").read_text())["perf"]


def test_a_cache_is_reused_after_the_data_folder_is_copied_elsewhere(tmp_path: Path) -> None:
    here = tmp_path / "nfs" / "data"
    write_chalearn_imagefolder(here / GENDER, n_per_class=4)
    first = open_cache(_images(here / GENDER / "TRAIN"), 32, tmp_path / "shared_cache")
    assert first.built
    _copy_without_times(here, tmp_path / "scratch" / "data")
    copied = _images(tmp_path / "scratch" / "data" / GENDER / "TRAIN")
    CountingFiles.decodes = 0
    again = open_cache(copied, 32, tmp_path / "shared_cache")
    assert not again.built and again.key == first.key and CountingFiles.decodes == 0
    assert np.array_equal(np.asarray(again.pixels), np.asarray(first.pixels))

    # the trainer: the data root (its .mtl_cache inside) copied to another place reuses every split's cache
    _train(tmp_path / "run_here", here)
    assert all(v.startswith("on (auto), built") for k, v in _perf(tmp_path / "run_here").items()
               if k.startswith("cache "))
    _copy_without_times(here, tmp_path / "elsewhere")
    _train(tmp_path / "run_elsewhere", tmp_path / "elsewhere")
    notes = {k: v for k, v in _perf(tmp_path / "run_elsewhere").items() if k.startswith("cache ")}
    assert len(notes) == 3 and all(v.startswith("on (auto), reused") for v in notes.values()), notes
    assert (tmp_path / "run_here" / "metrics.jsonl").read_bytes() == \
        (tmp_path / "run_elsewhere" / "metrics.jsonl").read_bytes()

    # changed content at the same name and size is a new key (the head/tail pages are hashed)
    victim = copied.paths[0]
    raw = bytearray(victim.read_bytes())
    raw[-3] ^= 0xFF
    victim.write_bytes(bytes(raw))
    assert open_cache(copied, 32, tmp_path / "shared_cache").key != first.key


KILLER = """
import os, shutil, signal, sys
from pathlib import Path
from mtl_cluster.train.data import stage
from mtl_cluster.train.data.base import FileImages

def half_then_die(shared, tmp, key):   # the node's copy is killed halfway through the pixel file
    data = (shared / f"{key}.npy").read_bytes()
    (tmp / f"{key}.npy").write_bytes(data[: len(data) // 2])
    os.kill(os.getpid(), signal.SIGKILL)

stage._copy_entry = half_then_die
paths = sorted(Path(sys.argv[1]).rglob("*.jpg"))
stage.stage_cache(FileImages(paths, [0.0] * len(paths)), 32, Path(sys.argv[2]), Path(sys.argv[3]))
"""


def test_a_stage_copy_killed_halfway_leaves_nothing_a_later_task_trusts(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_chalearn_imagefolder(data, n_per_class=4, zero_byte=0, extras=False)
    paths = sorted(data.rglob("*.jpg"))
    images = FileImages(paths, [0.0] * len(paths))
    shared, root = tmp_path / "shared", tmp_path / "node" / "mtl_stage"
    killed = subprocess.run([sys.executable, "-c", KILLER, str(data), str(shared), str(root)], cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    leftovers = list(root.glob(".*.tmp-*"))
    assert len(leftovers) == 1 and not (root / RECORD).exists()   # a half copy, under its temp name only
    key = leftovers[0].name.split(".")[1]
    assert not (root / key).exists()

    (root / key).mkdir()   # and a folder under the real name that never got its meta (the commit mark)
    shutil.copyfile(shared / f"{key}.npy", root / key / f"{key}.npy")
    staged = stage_cache(images, 32, shared, root)   # the lock the killed task held is free: flock died with it
    assert "copied" in staged.note and "already" not in staged.note, staged.note
    assert staged.decoded.key == key
    assert np.array_equal(np.asarray(staged.decoded.pixels), np.asarray(open_cache(images, 32, shared).pixels))
    assert not list(root.glob(".*.tmp-*"))
    assert [json.loads(line)["key"] for line in (root / RECORD).read_text().splitlines()] == [key]
    assert sorted(p.name for p in (root / key).iterdir()) == [f"{key}.json", f"{key}.npy"]
    assert "already on this node" in stage_cache(images, 32, shared, root).note

    (tmp_path / "read_only").write_text("a file where the shared cache folder would be: it cannot be written")
    other = stage_cache(images, 32, tmp_path / "read_only", tmp_path / "node2")   # decoded onto the node instead
    assert "decoded here" in other.note and other.decoded.key == key
    assert np.array_equal(np.asarray(other.decoded.pixels), np.asarray(staged.decoded.pixels))


def test_stage_to_is_not_in_the_signature_and_bad_values_are_one_line(tmp_path: Path, capsys) -> None:
    plain = train_config_from_dict(CONFIG)
    staged = train_config_from_dict({**CONFIG, "data": {"stage_to": "$TMPDIR"}})
    assert signature(plain) == signature(staged) and staged.data.stage_to == "$TMPDIR"
    for bad in ("scratch", "", " ", "/tmp/a\nb"):
        with pytest.raises(ConfigError, match="data.stage_to: .* is not a folder path"):
            train_config_from_dict({**CONFIG, "data": {"stage_to": bad}})
    assert stage_root("$MY_SCRATCH/x", {"MY_SCRATCH": "/local"}) == Path("/local/x/mtl_stage")
    assert stage_root("${MY_SCRATCH}", {"MY_SCRATCH": "/local"}) == Path("/local/mtl_stage")
    with pytest.raises(DataError, match=r"names \$NOT_SET_HERE, which is not set in this job"):
        stage_root("$NOT_SET_HERE/stage", {})
    assert train_main(["--run-dir", str(tmp_path / "run"), "--set", "data.stage_to=scratch"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "data.stage_to: 'scratch' is not a folder path" in err, err


def test_a_run_requeued_onto_another_node_stages_again_and_resumes_exactly(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_chalearn_imagefolder(data / GENDER, n_per_class=4)
    _train(tmp_path / "unstaged", data)

    def usr2_mid_epoch_2(event: str, info: dict) -> None:   # Slurm's warning before a requeue
        if event == "step" and (info["epoch"], info["step"]) == (2, 1):
            os.kill(os.getpid(), signal.SIGUSR2)

    cfg = train_config_from_dict({**CONFIG, "data": {"root": str(data), "stage_to": str(tmp_path / "node_a")}})
    with pytest.raises(Interrupted):
        run_training(cfg, tmp_path / "run", progress=usr2_mid_epoch_2)
    cfg_b = train_config_from_dict({**CONFIG, "data": {"root": str(data), "stage_to": str(tmp_path / "node_b")}})
    run_training(cfg_b, tmp_path / "run", handle_signals=False)   # the requeued attempt, on a node with no copy
    log = (tmp_path / "run" / "log.txt").read_text()
    assert "resumed from ckpt-e0001-s000001" in log
    for node in ("node_a", "node_b"):
        assert len((tmp_path / node / "mtl_stage" / RECORD).read_text().splitlines()) == 3, node
    assert (tmp_path / "run" / "metrics.jsonl").read_bytes() == (tmp_path / "unstaged" / "metrics.jsonl").read_bytes()


STUDY = """\
defaults:
  dataset: CVPR_16_ChaLearn
  loss_weights: [1, 0, 0, 0]
  image_size: 64
  batch_size: 4
  epoch: 2
  steps_per_epoch: 3
  device: cpu
  data: {{stage_to: $TMPDIR/scratch}}
experiments:
  - name: AlexNet-Gender
grid:
  seed: [0, 1]
clusters:
  staged:
    executor: slurm
    partition: gpu
    gres: "gpu:1"
    cpus_per_task: 1
    mem_gb: 2
    timeout_min: 5
    array_parallelism: 2
    data_root: {data}
    setup: ["export OMP_NUM_THREADS=1", "export TMPDIR={node}"]
"""


@pytest.mark.slurm
def test_two_array_tasks_on_one_node_copy_once_and_train_as_unstaged(tmp_path: Path) -> None:
    require_cluster()
    from mtl_cluster.cli.launch import launch_main

    data, node = tmp_path / "data", tmp_path / "node_tmp"
    write_chalearn_imagefolder(data / GENDER, n_per_class=5)
    study = tmp_path / "experiments.yaml"
    study.write_text(textwrap.dedent(STUDY.format(data=data, node=node)))
    assert launch_main([str(study), "--cluster", "staged", *dirs(tmp_path)]) == 0
    runs = specs(study, tmp_path)
    assert len(runs) == 2 and runs[0].config.data.stage_to == "$TMPDIR/scratch"   # expanded in the job only
    # meanwhile the same seed-0 run, unstaged, here
    reference = tmp_path / "reference"
    _train_at_one_thread(reference, data)    # the jobs export OMP_NUM_THREADS=1: compare at equal threads
    wait(lambda: all_completed(runs), 240, "the two staged array tasks to complete")

    stage = node / "scratch" / "mtl_stage"
    copies = [json.loads(line) for line in (stage / RECORD).read_text().splitlines()]
    keys = [c["key"] for c in copies]
    assert len(keys) == len(set(keys)) == 3, copies    # train, val, test of gender: each copied once on the node
    assert {c["job"] is not None for c in copies} == {True}
    notes = [v for s in runs for k, v in _perf(s.run_dir).items() if k.startswith("stage ")]
    assert len(notes) == 6 and all(f"to {stage}" in n or f"({stage})" in n for n in notes), notes
    assert sum(" copied" in n and "another task" not in n for n in notes) == 3, notes
    assert sorted(p.name for p in stage.iterdir() if p.is_dir()) == sorted(keys)   # no temp folder left
    seed0 = next(s for s in runs if s.config.seed == 0)
    assert (seed0.run_dir / "metrics.jsonl").read_bytes() == (reference / "metrics.jsonl").read_bytes()

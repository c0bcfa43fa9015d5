"""Exact resume: a run killed (SIGKILL), stopped (SIGUSR2) or left with a damaged checkpoint ends
byte-identical to an uninterrupted run. These run the real CLI in a subprocess and really kill it."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch

from conftest import REPO, TINY, run_cli, sets, train_cmd
from mtl_cluster.signals import spawn_shielded

FREQUENT = sets(*TINY, "checkpoint_every_min=0.0001")  # a checkpoint at every step boundary


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("ref") / "run"
    res = run_cli(train_cmd(run, *sets(*TINY)))
    assert res.returncode == 0, res.stderr
    return run


def _start(run: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    return subprocess.Popen(train_cmd(run, *FREQUENT), cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _wait_for_checkpoint(proc: subprocess.Popen, run: Path, name: str, timeout: float = 240) -> None:
    """Block until the run has written checkpoint ``name`` (mid-epoch), then return at once."""
    deadline = time.monotonic() + timeout
    while not (run / "checkpoints" / name).exists():
        assert proc.poll() is None, f"run ended early: {proc.stderr.read()}"
        assert time.monotonic() < deadline, "no mid-epoch checkpoint appeared"
        time.sleep(0.02)


def _same_results(a: Path, b: Path) -> None:
    assert (a / "metrics.jsonl").read_bytes() == (b / "metrics.jsonl").read_bytes()
    assert (a / "summary.json").read_bytes() == (b / "summary.json").read_bytes()
    epochs = [(r["epoch"], r["split"]) for r in map(json.loads, (b / "metrics.jsonl").read_text().splitlines())]
    assert epochs == [(e, s) for e in (1, 2, 3) for s in ("train", "val", "test")], "an epoch missing or written twice"


def test_sigkill_mid_epoch_resumes_identically(reference: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    proc = _start(run)
    _wait_for_checkpoint(proc, run, "ckpt-e0001-s000003.pt")   # epoch 2, after step 3 of 6
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert json.loads((run / "status.json").read_text())["state"] == "running"  # it had no chance to say
    res = run_cli(train_cmd(run, *FREQUENT))
    assert res.returncode == 0, res.stderr
    _same_results(reference, run)
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "completed" and status["attempts"] == 2
    assert "resumed from ckpt-e0001-s00000" in (run / "log.txt").read_text()


def test_sigusr2_checkpoints_exits_75_and_resumes(reference: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    proc = _start(run)
    _wait_for_checkpoint(proc, run, "ckpt-e0000-s000002.pt")
    proc.send_signal(signal.SIGUSR2)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 75, err
    assert "SIGUSR2 received" in err and "Traceback" not in err
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "interrupted" and "SIGUSR2" in status["reason"]
    res = run_cli(train_cmd(run, *FREQUENT))
    assert res.returncode == 0, res.stderr
    _same_results(reference, run)


def test_ctrl_c_leaves_the_run_resumable_not_failed(reference: Path, tmp_path: Path) -> None:
    """Ctrl-C (SIGINT -> KeyboardInterrupt) is the user stopping, not a crash: state interrupted, the last
    checkpoint stands, and the same command resumes to the uninterrupted run's numbers."""
    run = tmp_path / "run"
    proc = _start(run)
    _wait_for_checkpoint(proc, run, "ckpt-e0000-s000002.pt")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "interrupted" and "Ctrl-C" in status["reason"], status
    res = run_cli(train_cmd(run, *FREQUENT))
    assert res.returncode == 0, res.stderr
    _same_results(reference, run)


def _catches(pid: int, sig: signal.Signals) -> bool:
    """The process has a handler for ``sig`` (its SigCgt mask in /proc)."""
    try:
        line = next(ln for ln in Path(f"/proc/{pid}/status").read_text().splitlines() if ln.startswith("SigCgt:"))
    except (OSError, StopIteration):
        return False
    return bool(int(line.split()[1], 16) >> (sig - 1) & 1)


@pytest.mark.parametrize("sig", [signal.SIGUSR2, signal.SIGTERM])
def test_signal_during_startup_is_caught_and_resumable(reference: Path, tmp_path: Path, sig) -> None:
    """Slurm may signal a job seconds after it starts: the trainer, still loading torch, must not die of it."""
    run = tmp_path / "run"
    proc = _start(run)
    deadline = time.monotonic() + 30
    while not _catches(proc.pid, sig):
        assert proc.poll() is None and time.monotonic() < deadline, "the trainer never installed its handler"
        time.sleep(0.002)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 75, err
    assert f"{sig.name} received before training began" in err and "Traceback" not in err
    assert not (run / "status.json").exists() and not (run / "checkpoints").exists()   # no attempt was made
    res = run_cli(train_cmd(run, *FREQUENT))
    assert res.returncode == 0, res.stderr
    _same_results(reference, run)
    assert json.loads((run / "status.json").read_text())["attempts"] == 1


def test_signal_at_spawn_waits_for_the_handler(tmp_path: Path) -> None:
    """The launcher starts trainers with the stop signals blocked: one sent the instant the process exists
    (the interpreter not even initialised) is held until the handler is in place, not fatal."""
    run = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = spawn_shielded(train_cmd(run, *FREQUENT), cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    proc.send_signal(signal.SIGUSR2)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 75, (proc.returncode, err)
    assert "SIGUSR2 received before training began" in err and not (run / "status.json").exists()


def test_damaged_newest_checkpoint_falls_back_to_previous(reference: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    proc = _start(run)
    _wait_for_checkpoint(proc, run, "ckpt-e0001-s000004.pt")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    newest = sorted((run / "checkpoints").glob("ckpt-*.pt"))[-1]
    assert newest.name == "ckpt-e0001-s000004.pt"
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 3])   # truncated on disk
    partial = newest.parent / ".ckpt-e0001-s000005.pt.k1ll3d.tmp"           # a write the kill cut short
    partial.write_bytes(b"half a checkpoint")
    res = run_cli(train_cmd(run, *FREQUENT))
    assert res.returncode == 0, res.stderr
    assert (newest.parent / (newest.name + ".damaged")).exists() and not partial.exists()
    log = (run / "log.txt").read_text()
    assert "is damaged" in log and f"removed {partial.name}" in log
    _same_results(reference, run)


def test_checkpoint_of_another_config_is_refused(reference: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert run_cli(train_cmd(run, *sets(*TINY, "epoch=1"))).returncode == 0
    res = run_cli(train_cmd(run, *sets(*TINY, "epoch=1", "lr_rate=0.5")))
    assert res.returncode == 2
    assert res.stderr.count("\n") == 1 and "signature" in res.stderr and "Traceback" not in res.stderr


def test_only_the_last_two_checkpoints_are_kept(reference: Path) -> None:
    names = sorted(p.name for p in (reference / "checkpoints").iterdir())
    assert names == ["ckpt-e0002-s000000.pt", "ckpt-e0003-s000000.pt"]


def test_completed_run_is_not_trained_again(reference: Path) -> None:
    before = (reference / "metrics.jsonl").read_bytes()
    res = run_cli(train_cmd(reference, *sets(*TINY)))
    assert res.returncode == 0 and "already completed" in res.stderr
    assert (reference / "metrics.jsonl").read_bytes() == before


def test_damaged_final_checkpoint_of_a_parent(reference: Path, tmp_path: Path) -> None:
    """A completed pretraining run whose final checkpoint is damaged on disk: its fine-tune fails with one
    line naming the file and the fix (never an earlier epoch's weights); the parent, run again, retrains its
    last epoch from the previous checkpoint to the same metrics and the same final weights; the fine-tune
    then trains."""
    parent, child = tmp_path / "parent", tmp_path / "child"
    shutil.copytree(reference, parent)
    final = sorted((parent / "checkpoints").glob("ckpt-*.pt"))[-1]
    weights = torch.load(final, map_location="cpu", weights_only=True)["model"]
    final.write_bytes(final.read_bytes()[: final.stat().st_size // 2])
    fine_tune = train_cmd(child, *sets(*TINY, f"init_checkpoint={parent}", "loss_weights=[1,0,0,0]"))
    res = run_cli(fine_tune)
    assert res.returncode != 0 and "Traceback" not in res.stderr
    assert f"{final.name} is damaged" in res.stderr.splitlines()[-1] and "--force" in res.stderr, res.stderr
    assert not (parent / "checkpoints" / (final.name + ".damaged")).exists()   # the parent's folder untouched

    res = run_cli(train_cmd(parent, *sets(*TINY)))
    assert res.returncode == 0 and "final checkpoint" in res.stderr and "is damaged" in res.stderr, res.stderr
    _same_results(reference, parent)
    again = torch.load(final, map_location="cpu", weights_only=True)["model"]
    assert weights.keys() == again.keys() and all(torch.equal(weights[k], again[k]) for k in weights)
    assert run_cli(fine_tune).returncode == 0


def test_nan_loss_fails_with_reason_and_keeps_checkpoint(tmp_path: Path) -> None:
    run = tmp_path / "run"
    res = run_cli(train_cmd(run, *sets(*TINY, "lr_rate=1e12", "epoch=4", "checkpoint_every_min=0.0001")))
    assert res.returncode == 1
    assert "loss is" in res.stderr and "Traceback" not in res.stderr
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "failed" and "loss is" in status["reason"]
    assert not (run / "summary.json").exists()
    kept = sorted((run / "checkpoints").glob("ckpt-*.pt"))        # the last good checkpoint is there, whole
    assert kept and f"last good checkpoint {kept[-1].name} kept" in status["reason"], (kept, status["reason"])
    from mtl_cluster.train.checkpoint import load_latest
    state, path = load_latest(run / "checkpoints", status["signature"])
    assert path == kept[-1] and all(torch.isfinite(v).all() for v in state["model"].values())


def _scalars(run: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar tag's (step, value) list as TensorBoard's own reader sees the run's event files."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    acc = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_resumed_runs_tensorboard_events_have_no_duplicated_steps(reference: Path, tmp_path: Path) -> None:
    """SIGKILL in epoch 2, plus the events a dying attempt may have written past its last checkpoint (epochs 2
    and 3, value 999): after the resume every tag has epochs 1, 2, 3 once each, with the resumed values."""
    from torch.utils.tensorboard import SummaryWriter

    run = tmp_path / "run"
    proc = _start(run)
    _wait_for_checkpoint(proc, run, "ckpt-e0001-s000003.pt")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    stale = SummaryWriter(log_dir=str(run / "tensorboard"))
    for step in (2, 3):
        stale.add_scalar("val/loss", 999.0, step)
    stale.close()
    res = run_cli(train_cmd(run, *FREQUENT))
    assert res.returncode == 0, res.stderr
    _same_results(reference, run)        # the event files stay out of the byte-identical files
    scalars = _scalars(run)
    assert {"train/loss", "val/loss", "test/loss", "val/gender_acc", "run/lr", "run/train_images_per_s"} <= set(scalars)
    for tag, points in scalars.items():
        assert [s for s, _ in points] == [1, 2, 3], (tag, points)
    val = [json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines()]
    want = [r["loss"] for r in val if r["split"] == "val"]
    assert [v for _, v in scalars["val/loss"]] == pytest.approx(want, rel=1e-6)


def test_without_tensorboard_one_line_says_how_to_turn_it_on(tmp_path: Path, monkeypatch, caplog) -> None:
    import logging
    import sys

    from mtl_cluster.train.tboard import EventLog
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)   # as if the package were not installed
    with caplog.at_level(logging.INFO, logger="mtl_cluster"):
        events = EventLog(tmp_path, next_epoch=1)
        events.epoch([{"epoch": 1, "split": "val", "loss": 1.0}], {"lr": 0.1})
        events.close()
    assert [r.getMessage() for r in caplog.records] == [
        "TensorBoard events: off (pip install -e '.[tensorboard]' to write them)"]
    assert not (tmp_path / "tensorboard").exists()

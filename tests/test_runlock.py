"""One trainer per run folder (mtl_cluster/runlock.py): the lock itself, with real processes holding it, its
fallback for file systems without flock (and that fallback's stale rule), and the acceptance test: a second
``mtl-train`` on a folder being trained exits at once with exit 3, touching nothing, and the first run ends
byte-identical to an undisturbed one."""
from __future__ import annotations

import errno
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, TINY, run_cli, sets, train_cmd
from mtl_cluster import runlock
from mtl_cluster.errors import EXIT_BUSY, RunFolderBusy
from mtl_cluster.runlock import EXCL_NAME, LOCK_NAME, Holder, RunLock, default_wait_s, is_stale

# A process that takes the lock, says "held", then releases after ``hold`` seconds (or never: -1) and lingers.
HOLDER = """
import os, sys, time
from pathlib import Path
from mtl_cluster.runlock import RunLock
lock = RunLock(Path(sys.argv[1]), use_flock=sys.argv[3] == "flock").acquire()
print("held", flush=True)
hold = float(sys.argv[2])
if hold >= 0:
    time.sleep(hold)
    lock.release()
    print("released", flush=True)
time.sleep(600)
"""


def _holder(run: Path, hold: float = -1, mode: str = "flock") -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(run), str(hold), mode], cwd=REPO,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def _stop(proc: subprocess.Popen) -> None:
    proc.kill()
    proc.wait(timeout=30)


def _dead_pid() -> int:
    """The pid of a process that has exited (and been reaped) on this host."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# -- the lock ------------------------------------------------------------------------------------------------
def test_acquire_writes_the_holder_and_release_clears_it(tmp_path: Path) -> None:
    with RunLock(tmp_path) as lock:
        assert lock.mode == "flock" and lock.held
        holder = json.loads((tmp_path / LOCK_NAME).read_text())
        assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname() and holder["since"]
    assert not lock.held and (tmp_path / LOCK_NAME).read_text() == ""   # no holder named after release
    with RunLock(tmp_path):                                               # and free again
        pass


def test_job_id_is_recorded(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("SLURM_JOB_ID", "77")
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "70")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "3")
    with RunLock(tmp_path):
        assert json.loads((tmp_path / LOCK_NAME).read_text())["job_id"] == "70_3"


def test_a_second_open_in_the_same_process_is_refused(tmp_path: Path) -> None:
    with RunLock(tmp_path):
        with pytest.raises(RunFolderBusy, match=f"pid {os.getpid()} on host"):
            RunLock(tmp_path).acquire()


def test_a_holder_that_names_nobody_is_still_refused(tmp_path: Path) -> None:
    with RunLock(tmp_path):
        (tmp_path / LOCK_NAME).write_text("")                  # as in the instant between flock and its line
        with pytest.raises(RunFolderBusy, match=f"the holder is not named in {tmp_path / LOCK_NAME}"):
            RunLock(tmp_path).acquire()


def test_another_process_is_refused_with_the_holder_named(tmp_path: Path) -> None:
    proc = _holder(tmp_path)
    try:
        t0 = time.monotonic()
        with pytest.raises(RunFolderBusy) as info:
            RunLock(tmp_path).acquire()
        assert time.monotonic() - t0 < 2                       # no wait asked: refused at once
        msg = str(info.value)
        assert "\n" not in msg and str(tmp_path) in msg and "another trainer is writing it" in msg
        assert f"pid {proc.pid} on host {socket.gethostname()}" in msg and "since 20" in msg
        assert info.value.exit_code == EXIT_BUSY == 3 and info.value.holder_pid == proc.pid
    finally:
        _stop(proc)
    with RunLock(tmp_path):                                     # the holder died: the kernel freed the lock
        assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()


def test_bounded_wait_gets_the_lock_when_the_holder_releases(tmp_path: Path) -> None:
    proc = _holder(tmp_path, hold=1.0)
    try:
        t0 = time.monotonic()
        with RunLock(tmp_path, wait_s=30) as lock:
            waited = time.monotonic() - t0
            assert lock.held and json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()
        assert 0.3 < waited < 10, waited
        assert proc.stdout is not None and proc.stdout.readline().strip() == "released"
    finally:
        _stop(proc)


def test_bounded_wait_gives_up_and_a_stop_ends_it_early(tmp_path: Path) -> None:
    proc = _holder(tmp_path)
    try:
        t0 = time.monotonic()
        with pytest.raises(RunFolderBusy, match="waited 1 s"):
            RunLock(tmp_path, wait_s=1.0).acquire()
        assert 0.9 < time.monotonic() - t0 < 5
        t0 = time.monotonic()
        with pytest.raises(RunFolderBusy):
            RunLock(tmp_path, wait_s=60, stop=lambda: True).acquire()
        assert time.monotonic() - t0 < 2
    finally:
        _stop(proc)


def test_requeued_attempts_wait_others_do_not() -> None:
    assert default_wait_s({}) == 0 and default_wait_s({"SLURM_RESTART_COUNT": "0"}) == 0
    assert default_wait_s({"SLURM_RESTART_COUNT": "2"}) == runlock.REQUEUE_WAIT_S > 0


def test_a_forked_child_does_not_keep_a_dead_trainers_lock(tmp_path: Path) -> None:
    """flock belongs to the open file, which a fork (a DataLoader worker) shares: the child closes its copy,
    so a SIGKILLed trainer's lingering child does not block the next attempt."""
    code = HOLDER.replace('print("held", flush=True)',
                          'child = os.fork()\nif child == 0:\n    time.sleep(600)\n'
                          'print("held", child, flush=True)')
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path), "-1", "flock"], cwd=REPO,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    word, child = proc.stdout.readline().split()
    try:
        with pytest.raises(RunFolderBusy):
            RunLock(tmp_path).acquire()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        assert runlock.pid_alive(int(child))                   # the child still runs...
        with RunLock(tmp_path) as lock:                        # ...and the lock is free
            assert lock.held
    finally:
        os.kill(int(child), signal.SIGKILL)


# -- the fallback: an O_EXCL file ----------------------------------------------------------------------------
def _plant(run: Path, host: str, pid: int, age_s: float = 0) -> Path:
    path = run / EXCL_NAME
    path.write_text(json.dumps({"host": host, "pid": pid, "job_id": None, "since": "2026-01-01T00:00:00"}) + "\n")
    if age_s:
        t = time.time() - age_s
        os.utime(path, (t, t))
    return path


def test_fallback_takes_and_releases_its_file(tmp_path: Path) -> None:
    with RunLock(tmp_path, use_flock=False) as lock:
        assert lock.mode == "excl"
        assert json.loads((tmp_path / EXCL_NAME).read_text())["pid"] == os.getpid()
        with pytest.raises(RunFolderBusy, match=f"pid {os.getpid()} on host"):
            RunLock(tmp_path, use_flock=False).acquire()
    assert not (tmp_path / EXCL_NAME).exists()


def test_fallback_refuses_a_live_holder_in_another_process(tmp_path: Path) -> None:
    proc = _holder(tmp_path, mode="excl")
    try:
        with pytest.raises(RunFolderBusy, match=f"pid {proc.pid} on host {socket.gethostname()}"):
            RunLock(tmp_path, use_flock=False).acquire()
    finally:
        _stop(proc)
    with RunLock(tmp_path, use_flock=False):                     # killed, so its file is stale: taken over
        assert json.loads((tmp_path / EXCL_NAME).read_text())["pid"] == os.getpid()


def test_fallback_stale_rule(tmp_path: Path) -> None:
    here, dead = socket.gethostname(), _dead_pid()
    _plant(tmp_path, here, dead, age_s=5)                        # this host, dead pid: taken over at once
    with RunLock(tmp_path, use_flock=False):
        assert json.loads((tmp_path / EXCL_NAME).read_text())["pid"] == os.getpid()
    _plant(tmp_path, here, os.getppid(), age_s=10 * 86400)       # this host, live pid: refused however old
    with pytest.raises(RunFolderBusy, match=f"pid {os.getppid()} on host {here}"):
        RunLock(tmp_path, use_flock=False).acquire()
    _plant(tmp_path, "elsewhere", 1, age_s=3600)                 # another host, refreshed an hour ago: refused
    with pytest.raises(RunFolderBusy, match="pid 1 on host elsewhere"):
        RunLock(tmp_path, use_flock=False).acquire()
    _plant(tmp_path, "elsewhere", 1, age_s=25 * 3600)            # another host, not refreshed for 25 h: stale
    with RunLock(tmp_path, use_flock=False):
        assert json.loads((tmp_path / EXCL_NAME).read_text())["host"] == here
    _plant(tmp_path, "elsewhere", 1, age_s=120)                  # the age is configurable
    with pytest.raises(RunFolderBusy):
        RunLock(tmp_path, use_flock=False).acquire()
    with RunLock(tmp_path, use_flock=False, stale_after_s=60):
        pass
    # nothing left but the lock's own log (its takeovers name the stale holders they found)
    assert not (tmp_path / EXCL_NAME).exists() and [p.name for p in tmp_path.iterdir()] == [runlock.LOG_NAME]
    took = [r["found"] for r in runlock.read_log(tmp_path) if r["event"] == "acquired" and "found" in r]
    assert [(f["host"], f["pid"], f["alive"]) for f in took] == [(here, dead, False), ("elsewhere", 1, None),
                                                                 ("elsewhere", 1, None)]


def test_stale_rule_as_a_function() -> None:
    here, dead = socket.gethostname(), _dead_pid()
    assert is_stale(Holder(host=here, pid=dead), age_s=0)
    assert not is_stale(Holder(host=here, pid=os.getpid()), age_s=10 * 86400)
    assert not is_stale(Holder(host="other", pid=dead), age_s=3600)
    assert is_stale(Holder(host="other", pid=dead), age_s=25 * 3600)
    assert not is_stale(None, age_s=60) and is_stale(None, age_s=25 * 3600)   # unreadable: judged by age
    assert is_stale(Holder(host=here, pid=0), age_s=0)         # pid 0 would "signal" our own process group


def test_fallback_is_used_where_flock_is_not_supported(tmp_path: Path, monkeypatch) -> None:
    def no_flock(_fd: int, _op: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(runlock.fcntl, "flock", no_flock)
    with RunLock(tmp_path) as lock:
        assert lock.mode == "excl" and (tmp_path / EXCL_NAME).exists()
    assert not (tmp_path / EXCL_NAME).exists()


def test_env_chooses_the_fallback(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MTL_RUN_LOCK", "excl")
    with RunLock(tmp_path) as lock:
        assert lock.mode == "excl"


# -- the trainer -----------------------------------------------------------------------------------------------
def test_the_trainer_touches_nothing_in_a_held_folder_and_releases_after_a_run(tmp_path: Path, capsys) -> None:
    """In process: a held folder is refused before a file is written; after a run that ended (here failing at
    its first status write) the same process can take the lock again (mtl-train --worker trains many)."""
    from mtl_cluster.cli.train import train_main
    from mtl_cluster.config import load_train_config
    from mtl_cluster.train.loop import Trainer

    run = tmp_path / "run"
    run.mkdir()
    with RunLock(run):
        assert train_main(["--run-dir", str(run), *sets(*TINY)]) == EXIT_BUSY
        err = capsys.readouterr().err
        assert err.startswith("mtl-train: error: run folder ") and err.count("\n") == 1
        assert f"pid {os.getpid()}" in err
        assert sorted(p.name for p in run.iterdir()) == [LOCK_NAME, runlock.LOG_NAME]   # the holder's own
        assert [r["event"] for r in runlock.read_log(run)] == ["acquired"]             # the refusal wrote none
    (run / "status.json").mkdir()
    with pytest.raises(OSError):
        Trainer(load_train_config(None, TINY), run).run(handle_signals=False)
    assert (run / "config.yaml").exists()
    with RunLock(run) as lock:
        assert lock.held


def test_a_requeued_attempt_waits_and_a_stop_signal_while_waiting_is_an_interruption(tmp_path: Path) -> None:
    """SLURM_RESTART_COUNT > 0: the trainer waits for its predecessor instead of failing at once; SIGTERM while
    it waits ends it with exit 75 (requeued again), not 2, and it wrote nothing."""
    run = tmp_path / "run"
    run.mkdir()
    holder = _holder(run)
    env = {**os.environ, "SLURM_RESTART_COUNT": "1"}
    proc = subprocess.Popen(train_cmd(run, *sets(*TINY)), cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        t0 = time.monotonic()
        while time.monotonic() - t0 < 2:                       # a duplicate would have exited by now
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 75, err
        assert err.startswith("mtl-train: error: SIGTERM received while waiting for") and err.count("\n") == 1
        assert time.monotonic() - t0 < 30                      # well within the 120 s wait
        assert sorted(p.name for p in run.iterdir()) == [LOCK_NAME, runlock.LOG_NAME]
        assert json.loads((run / LOCK_NAME).read_text())["pid"] == holder.pid
        assert [(r["event"], r["pid"]) for r in runlock.read_log(run)] == [("acquired", holder.pid)]
    finally:
        _stop(holder)
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# A checkpoint at every step: one on disk says the run is training. It runs ~25 s here; the first trainer is
# paused while the second tries, so it need not run longer than it takes to see that checkpoint.
FREQUENT = sets(*TINY, "checkpoint_every_min=0.0001")


def _snapshot(run: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(run)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(run.rglob("*")) if p.is_file()}


def test_a_second_trainer_on_a_folder_being_trained_exits_at_once(tmp_path: Path) -> None:
    """The acceptance test, real processes: while the first mtl-train trains, a second on the same --run-dir
    exits within seconds with exit 3 and one line naming the holder, and changes nothing in the folder (the
    first is paused meanwhile with SIGSTOP, so any change would be the second's); the first then ends
    byte-identical to an undisturbed run of the same config."""
    run, ref = tmp_path / "run", tmp_path / "ref"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    first = subprocess.Popen(train_cmd(run, *FREQUENT), cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while not (run / "checkpoints").is_dir() or not any((run / "checkpoints").glob("ckpt-*.pt")):
            assert first.poll() is None, f"the first run ended early: {first.stderr.read() if first.stderr else ''}"
            assert time.monotonic() < deadline, "the first run never checkpointed"
            time.sleep(0.05)
        assert json.loads((run / "status.json").read_text())["state"] == "running"
        first.send_signal(signal.SIGSTOP)
        before = _snapshot(run)
        t0 = time.monotonic()
        second = run_cli(train_cmd(run, *FREQUENT), timeout=60)
        took = time.monotonic() - t0
        after = _snapshot(run)
        first.send_signal(signal.SIGCONT)
        assert second.returncode == EXIT_BUSY, second.stderr
        assert took < 10, took
        lines = second.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"mtl-train: error: run folder {run} is busy"), second.stderr
        assert f"pid {first.pid} on host {socket.gethostname()}" in lines[0] and "Traceback" not in second.stderr
        assert second.stdout == ""
        assert after == before                                  # not a byte, not an mtime: status.json, log.txt...
        _, err = first.communicate(timeout=600)
        assert first.returncode == 0, err
    finally:
        if first.poll() is None:
            first.send_signal(signal.SIGCONT)
            first.kill()
            first.wait()
    res = run_cli(train_cmd(ref, *FREQUENT), timeout=600)         # undisturbed, the same config
    assert res.returncode == 0, res.stderr
    for name in ("metrics.jsonl", "summary.json"):
        assert (run / name).read_bytes() == (ref / name).read_bytes(), name
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "completed" and status["attempts"] == 1 and status["pid"] == first.pid
    assert (run / "log.txt").read_text().count("attempt ") == 1
    assert (run / LOCK_NAME).read_text() == ""                 # released


# -- the lock's own log ----------------------------------------------------------------------------------------
def test_the_log_records_each_hold_and_a_dead_holders_successor(tmp_path: Path) -> None:
    """.lock.log: a clean hold is acquired + released; a holder SIGKILLed while holding leaves no release, and
    the next taker records the dead holder it found (not alive). holds_overlapped finds nothing wrong."""
    run = tmp_path / "run"
    run.mkdir()
    with RunLock(run):
        pass
    proc = _holder(run)                                         # holds until killed
    _stop(proc)
    with RunLock(run):
        pass
    log = runlock.read_log(run)
    assert [r["event"] for r in log] == ["acquired", "released", "acquired", "acquired", "released"], log
    assert log[2]["pid"] == proc.pid and log[0]["pid"] == log[3]["pid"] == os.getpid()
    assert log[3]["found"] == {"pid": proc.pid, "host": socket.gethostname(), "job_id": None, "alive": False}
    assert "found" not in log[0]
    assert runlock.holds_overlapped(log) == []


def test_the_log_shows_two_holders_at_once(tmp_path: Path) -> None:
    """The check is not vacuous: a taker that found a live holder, one that took the lock from a holder that
    neither released nor was found dead, and a release by a non-holder are each named."""
    me, other = {"host": "h", "pid": 1}, {"host": "h", "pid": 2}
    alive = [{"event": "acquired", **me}, {"event": "acquired", **other, "found": {"pid": 1, "alive": True}}]
    unseen = [{"event": "acquired", **me}, {"event": "acquired", **other}]
    stray = [{"event": "released", **other}]
    assert runlock.holds_overlapped(alive) == ["pid 2 on h took the lock while pid 1 was alive"]
    assert runlock.holds_overlapped(unseen) == ["pid 2 on h took the lock while pid 1 held it"]
    assert runlock.holds_overlapped(stray) == ["pid 2 on h released a lock it did not hold"]
    fine = [{"event": "acquired", **me}, {"event": "acquired", **other, "found": {"pid": 1, "alive": False}},
            {"event": "released", **other}, {"event": "acquired", **me}]
    assert runlock.holds_overlapped(fine) == []


def test_the_fallback_logs_too(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    with RunLock(run, use_flock=False):
        pass
    assert [(r["event"], r["mode"]) for r in runlock.read_log(run)] == [("acquired", "excl"), ("released", "excl")]

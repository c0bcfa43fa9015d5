"""``mtl-status --watch``: a live table in a real pseudo-terminal (redrawn in place, ETA and epoch columns,
exits 0 by itself once the runs end), plain lines through a pipe, a squeue that fails mid-watch, Ctrl-C.

The runs are the debug grid's run folders with the files a trainer writes (status.json, timings.jsonl,
metrics.jsonl); the test moves status.json from running to completed atomically while the watch runs, as
the trainer does. Running runs name this test's own process as their pid on this host, so they are alive.
"""
from __future__ import annotations

import fcntl
import json
import os
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path
from typing import Any

import pytest

from mtl_cluster.fsio import atomic_write_json

REPO = Path(__file__).resolve().parents[1]
ONLY = ["AlexNet-Smile", "AlexNet-Gender"]
ESC = "\x1b"


def _specs(tmp: Path) -> list[Any]:
    """The two runs, in ONLY's order."""
    from mtl_cluster.launch.study import load_experiments
    from mtl_cluster.launch.grid import expand
    specs = expand(load_experiments(REPO / "experiments.yaml"), tmp / "results", debug=True, only=ONLY)
    return sorted(specs, key=lambda s: ONLY.index(s.name))


def _stamp(ago: float = 0.0) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(time.time() - ago))


def _running(run_dir: Path, *, local: bool = True) -> None:
    """A run 1.5 epochs into 3, an epoch taking 600 s: 15 minutes to go."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "timings.jsonl").write_text(json.dumps({"epoch": 1, "attempt": 1, "seconds": 600.0}) + "\n")
    (run_dir / "metrics.jsonl").write_text(json.dumps({"epoch": 1, "split": "val", "smile_acc": 61.25,
                                                       "loss": 0.5}) + "\n")
    atomic_write_json(run_dir / "status.json", {
        "state": "running", "attempts": 1, "epoch": 1, "epochs": 3, "step": 5, "steps": 10,
        "host": socket.gethostname() if local else "node-elsewhere", "pid": os.getpid(),
        "attempt_started_at": _stamp(700), "updated_at": _stamp()})


def _complete(run_dir: Path) -> None:
    status = json.loads((run_dir / "status.json").read_text())
    status.update(state="completed", epoch=3, step=0, updated_at=_stamp())
    atomic_write_json(run_dir / "status.json", status)


def _cmd(tmp: Path, *extra: str) -> list[str]:
    return [sys.executable, "-c", "import sys; from mtl_cluster.cli.status import status_main; sys.exit(status_main())",
            str(REPO / "experiments.yaml"), "--debug", "--only", *ONLY, "--results", str(tmp / "results"),
            "--jobs-dir", str(tmp / "jobs"), *extra]


def _env(**more: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "TERM": "xterm-256color", "COLUMNS": "180", "LINES": "40",
           **more}
    for key in ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        env.pop(key, None)
    return env


class Pty:
    """A child process on a real pseudo-terminal (180x40); ``text`` is everything it wrote so far."""

    def __init__(self, cmd: list[str], env: dict[str, str]):
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 180, 0, 0))
        self.proc = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
        os.close(slave)
        self.raw = b""

    @property
    def text(self) -> str:
        return self.raw.decode("utf-8", "replace")

    def pump(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            ready, _, _ = select.select([self.master], [], [], 0.05)
            if ready:
                try:
                    chunk = os.read(self.master, 65536)
                except OSError:      # EIO: the child has gone and closed the terminal
                    chunk = b""
                if not chunk:
                    if self.proc.poll() is not None:
                        return
                    time.sleep(0.05)
                self.raw += chunk

    def until(self, pred: Any, timeout: float, what: str) -> None:
        end = time.monotonic() + timeout
        while not pred(self.text):
            assert time.monotonic() < end and self.proc.poll() is None, \
                f"no {what} after {timeout}s (exit {self.proc.poll()}):\n{self.text[-3000:]}"
            self.pump(0.1)

    def wait(self, timeout: float) -> int:
        end = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < end:
            self.pump(0.1)
        self.pump(0.3)
        if self.proc.poll() is None:
            self.proc.kill()
            pytest.fail(f"still running after {timeout}s:\n{self.text[-3000:]}")
        os.close(self.master)
        return self.proc.returncode


def _frames(text: str) -> int:
    return text.count("Ctrl-C to stop")      # the table's title: once per frame drawn


def test_watch_redraws_in_place_on_a_terminal_and_exits_when_the_runs_end(tmp_path):
    smile, gender = (s.run_dir for s in _specs(tmp_path))
    _running(smile)
    _running(gender)
    term = Pty(_cmd(tmp_path, "--watch", "1"), _env())
    term.until(lambda t: _frames(t) >= 2, 20, "second frame")
    first = term.text
    assert "ETA" in first and "epoch" in first and "last validation" in first and "attempts" in first
    assert "1/3 +5/10" in first                                   # epoch/step
    assert re.search(r"1[45]m\d\ds", first), first[-2000:]        # 1.5 epochs x 600 s, counting down
    assert "smile_acc=61.2" in first
    _complete(smile)
    term.until(lambda t: "1 completed" in t, 10, "the first run completed")
    assert term.proc.poll() is None                               # one run still trains: the watch goes on
    _complete(gender)
    ended = time.monotonic()
    rc = term.wait(15)
    waited = time.monotonic() - ended
    text = term.text
    assert rc == 0, text[-3000:]
    assert waited < 6, f"exited {waited:.1f}s after the last run completed"
    assert _frames(text) >= 3
    assert f"{ESC}[1A" in text and f"{ESC}[2K" in text            # rich Live: cursor up, erase line
    assert "every run has finished: 2 completed" in text
    assert "Traceback" not in text


def _plain_watch(tmp: Path, env: dict[str, str]) -> subprocess.Popen:
    # unbuffered bytes: _read_until reads the pipe itself (select on a buffered reader misses a second line
    # that arrived in the same chunk as the first, which made this test flaky)
    return subprocess.Popen(_cmd(tmp, "--watch", "1"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0,
                            env=env)


_PARTIAL: dict[int, bytes] = {}   # per watch process: bytes read after its last full line


def _read_until(proc: subprocess.Popen, lines: list[str], pred: Any, timeout: float) -> None:
    """Read stdout line by line (each must arrive while the watch runs: flushed) until ``pred(lines)``."""
    end = time.monotonic() + timeout
    fd = proc.stdout.fileno()
    while not pred(lines):
        assert time.monotonic() < end, f"timed out; so far: {lines}"
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            chunk = os.read(fd, 65536)
            assert chunk, f"the watch ended early (exit {proc.wait()}): {lines} {proc.stderr.read()}"
            *whole, _PARTIAL[proc.pid] = (_PARTIAL.get(proc.pid, b"") + chunk).split(b"\n")
            lines += [ln.decode("utf-8") for ln in whole]


def test_watch_prints_a_plain_line_per_change_off_a_terminal(tmp_path):
    smile, gender = (s.run_dir for s in _specs(tmp_path))
    _running(smile)
    _running(gender)
    proc = _plain_watch(tmp_path, _env())
    lines: list[str] = []
    _read_until(proc, lines, lambda ls: sum(": running" in ln for ln in ls) == 2, 20)
    time.sleep(2.5)                                               # refreshes with nothing new: no new lines
    _complete(smile)
    _read_until(proc, lines, lambda ls: any("AlexNet-Smile seed=0: completed" in ln for ln in ls), 10)
    _complete(gender)
    out, err_bytes = proc.communicate(timeout=15)
    err = err_bytes.decode("utf-8")
    lines += (_PARTIAL.pop(proc.pid, b"") + out).decode("utf-8").splitlines()
    text = "\n".join(lines)
    assert proc.returncode == 0, err
    assert ESC not in text and ESC not in err
    assert lines[0].startswith("watching ") and lines[-1] == "every run has finished: 2 completed"
    for label in ("AlexNet-Smile seed=0", "AlexNet-Gender seed=0"):
        mine = [ln for ln in lines if f" {label}: " in ln]
        assert len(mine) == 2, mine                               # running, then completed: nothing repeated
        assert re.search(r": running: local pid \d+; epoch 1/3 \+5/10; ETA 1[45]m\d\ds; attempts 1; smile_acc",
                         mine[0]), mine[0]
        assert "completed; epoch 3/3" in mine[1]
    assert "Traceback" not in err


def test_a_launch_under_way_keeps_the_watch_going_while_its_runs_look_new(tmp_path):
    """A local mtl-launch holds jobs/.lock while it trains its runs one after the other; those not reached yet
    look new. The watch goes on while the lock is held, and ends once it is released with nothing running."""
    from mtl_cluster.launch.ledger import launch_lock
    with launch_lock(tmp_path / "jobs"):
        proc = _plain_watch(tmp_path, _env())
        lines: list[str] = []
        _read_until(proc, lines, lambda ls: sum(": new" in ln for ln in ls) == 2, 20)
        time.sleep(2.5)
        assert proc.poll() is None, lines
    out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    rest = (_PARTIAL.pop(proc.pid, b"") + out).decode("utf-8").splitlines()
    assert rest[-1] == "nothing is queued or running any more: 2 new"


def _shims(tmp: Path) -> Path:
    """squeue answers once (job 4242 RUNNING), then fails until ``recover`` exists, then has no job 4242;
    sacct says it completed."""
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    (bin_dir / "squeue").write_text(f"""#!/bin/sh
n=$(cat {tmp}/calls 2>/dev/null || echo 0); echo $((n + 1)) > {tmp}/calls
if [ "$n" = 0 ]; then echo '4242|RUNNING'; exit 0; fi
if [ -e {tmp}/recover ]; then exit 0; fi
echo 'squeue: error: slurm_load_jobs error: Socket timed out on send/recv operation' >&2; exit 1
""")
    (bin_dir / "sacct").write_text("#!/bin/sh\necho '4242|COMPLETED'\n")
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    return bin_dir


def test_a_failing_squeue_keeps_the_last_known_states_and_does_not_end_the_watch(tmp_path):
    specs = _specs(tmp_path)
    on_slurm, local = specs[0].run_dir, specs[1].run_dir
    _running(on_slurm, local=False)      # a compute node's run: only Slurm can say it is alive
    _running(local)
    (tmp_path / "jobs").mkdir()
    atomic_write_json(tmp_path / "jobs" / "20260101-000000-test-1.json", {
        "cluster": "test", "runs": [{"run_dir": str(on_slurm), "job_id": "4242", "log": None}]})
    env = _env(PATH=f"{_shims(tmp_path)}:{os.environ['PATH']}")
    proc = _plain_watch(tmp_path, env)
    lines: list[str] = []
    _read_until(proc, lines, lambda ls: any("note: squeue did not answer" in ln for ln in ls), 20)
    time.sleep(2.5)                                                # a few failed refreshes
    assert proc.poll() is None
    _complete(on_slurm)
    _complete(local)
    (tmp_path / "recover").touch()
    out, err_bytes = proc.communicate(timeout=15)
    err = err_bytes.decode("utf-8")
    lines += (_PARTIAL.pop(proc.pid, b"") + out).decode("utf-8").splitlines()
    assert proc.returncode == 0, err
    assert int((tmp_path / "calls").read_text()) >= 4
    kept = [ln for ln in lines if f"{specs[0].label}: " in ln]
    assert "running: job running" in kept[0] and "job 4242 RUNNING" in kept[0], kept
    assert not any("unknown" in ln for ln in kept), kept          # the hiccup did not turn it unknown
    assert "note: squeue did not answer (failed or timed out): 1 job(s) keep their last known state, 0 unknown" \
        in "\n".join(lines)
    assert lines[-1] == "every run has finished: 2 completed" and "Traceback" not in err


def test_ctrl_c_ends_the_watch_with_130_and_no_traceback(tmp_path):
    for spec in _specs(tmp_path):
        _running(spec.run_dir)
    term = Pty(_cmd(tmp_path, "--watch", "30"), _env())
    term.until(lambda t: _frames(t) >= 1 and "updated" in t, 20, "first frame")
    term.proc.send_signal(signal.SIGINT)
    rc = term.wait(10)
    assert rc == 130, term.text[-2000:]
    assert "mtl-status: interrupted" in term.text and "Traceback" not in term.text


def test_bad_watch_interval_is_one_line_exit_2(tmp_path):
    res = subprocess.run(_cmd(tmp_path, "--watch", "soon"), capture_output=True, text=True, env=_env(), timeout=60)
    assert res.returncode == 2 and res.stderr.count("\n") == 1, res.stderr
    assert "argument --watch: 'soon' is not a refresh interval in seconds (above 0), e.g. --watch 10" in res.stderr
    assert "not a refresh interval" in subprocess.run(_cmd(tmp_path, "--watch", "-1"), capture_output=True, text=True,
                                                      env=_env(), timeout=60).stderr


def test_eta_from_the_runs_own_epoch_times_and_first_steps():
    from mtl_cluster.launch.status import eta_seconds, keep_known
    now = 1_800_000_000.0
    iso = lambda ago: time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(now - ago))   # noqa: E731
    status = {"epoch": 2, "step": 25, "steps": 100, "attempts": 2, "updated_at": iso(30)}
    timings = [{"seconds": 1000.0}, {"seconds": 90.0}, {"seconds": 110.0}, {"seconds": 100.0}, {"seconds": "x"}]
    # the last 3 epochs (100 s each on average), 10 - 2.25 epochs left, less the 30 s since the report
    assert eta_seconds(status, timings, 10, now) == (pytest.approx(7.75 * 100 - 30), False)
    # no epoch timed yet, first attempt: 25 steps in 50 s since it started -> 975 steps at 2 s, rough
    first = {"epoch": 0, "step": 25, "steps": 100, "attempts": 1, "attempt_started_at": iso(60), "updated_at": iso(10)}
    assert eta_seconds(first, [], 10, now) == (pytest.approx(975 * 2 - 10), True)
    assert eta_seconds({**first, "attempts": 2}, [], 10, now) == (None, False)    # resumed: no honest rate
    assert eta_seconds({**status, "updated_at": "garbage"}, timings, 10, now) == (pytest.approx(775), False)
    assert eta_seconds(status, timings, None, now) == (None, False)
    assert keep_known({"1": "UNKNOWN", "2": "UNKNOWN", "3": "PENDING"}, {"1": "RUNNING", "3": "RUNNING"}) == \
        ({"1": "RUNNING", "2": "UNKNOWN", "3": "PENDING"}, ["1"])


@pytest.mark.parametrize("accounted,expected", [("RUNNING", "GONE"), ("REQUEUED", "GONE"), ("PENDING", "GONE"),
                                                 ("TIMEOUT", "TIMEOUT"), ("COMPLETED", "COMPLETED"), ("", "GONE"),
                                                 ("RUNNING|someone-else", "RUNNING")])
def test_a_job_squeue_no_longer_lists_is_not_live_whatever_sacct_still_says(tmp_path, monkeypatch, accounted,
                                                                            expected):
    """sacct learns of a job's end after squeue: its lagging RUNNING must not make an ended job of this user
    live (fault 10 of the matrix saw mtl-status call an interrupted run running). sacct still names how a job
    ended, and tells another user's job, which this user's squeue does not list."""
    from mtl_cluster.launch.slurmq import slurm_states
    user = "mtl-test-user"
    monkeypatch.setenv("USER", user)
    line = f"4242|{accounted}" if "|" in accounted else f"4242|{accounted}|{user}"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "squeue").write_text("#!/bin/sh\necho '77_1|RUNNING|None'\n")
    (bin_dir / "sacct").write_text(f"#!/bin/sh\n[ -n '{accounted}' ] && echo '{line}'\nexit 0\n")
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    assert slurm_states(["4242", "77_1"]) == {"4242": expected, "77_1": "RUNNING"}

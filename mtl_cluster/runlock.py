"""One trainer per run folder: an exclusive lock held for the trainer's whole life.

Two trainers writing one folder (a duplicate job, a hand-started ``mtl-train`` on a folder a job is
training, a requeued attempt whose old attempt is still saving) would interleave metrics.jsonl lines and
overwrite each other's checkpoints. The trainer takes this lock before it writes anything there; a second
one is refused at once with ``RunFolderBusy`` (exit 3: Slurm must not requeue a duplicate), or waits a
bounded time when asked (a requeued attempt waits for its predecessor).

How: ``fcntl.flock(LOCK_EX | LOCK_NB)`` on ``<run_dir>/.lock``, which then holds the holder (host, pid,
Slurm job, since) as one JSON line for the refusal message. The kernel drops the lock when the holder
dies however it dies (SIGKILL included), so there is no stale lock. Where the file system does not honour
flock (it answers ENOLCK, EOPNOTSUPP...; or ``MTL_RUN_LOCK=excl`` says so, for a mount where flock is
node-local), the lock is the file ``<run_dir>/.lock.excl`` created with O_CREAT|O_EXCL, which a dead holder
leaves behind; see ``is_stale`` for when it is taken over.

Every holder also appends to ``<run_dir>/.lock.log`` (one JSON line when it takes the lock, one when it
gives it up): the lock's own record of who held the folder when. A taker writes what it found in the lock
file (a holder that died without releasing leaves its line) and whether that holder was still alive, so
``holds_overlapped`` can prove after the fact that no two trainers ever held one folder at once (the chaos
soak checks it). A refused trainer writes nothing. Imports no torch; never prints.

The lock files are created 0o666 less the umask, as ``open()`` creates files: under a group umask (002) a
labmate resuming the run must open ``.lock`` for writing to take it.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Callable, Mapping, Sequence

from .errors import Interrupted, RunFolderBusy
from .rundir import now_iso, read_jsonl, slurm_job_id
from .signals import pending

LOCK_NAME = ".lock"              # hidden: collectors skip dot files, and the run folder contract lists it
EXCL_NAME = ".lock.excl"         # the fallback's lock file
LOG_NAME = ".lock.log"           # every take and release of the lock, one JSON line each
POLL_S = 0.5                     # how often a waiting trainer tries again
REQUEUE_WAIT_S = 120.0           # a requeued attempt waits this long for its predecessor to exit
STALE_AFTER_S = 24 * 3600.0      # fallback: another host's lock not refreshed this long is stale
REFRESH_S = 300.0                # fallback: the holder refreshes its file's mtime this often
NO_FLOCK = frozenset({errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS, errno.EINVAL})
"""What flock answers on a file system that does not support it (as opposed to EWOULDBLOCK: taken)."""


@dataclass(frozen=True)
class Holder:
    """Who holds a lock, as its JSON line says; fields it lacks are None."""

    host: str | None = None
    pid: int | None = None
    job_id: str | None = None
    since: str | None = None

    @classmethod
    def parse(cls, text: str) -> Holder | None:
        """The holder of a lock file's text, or None for an empty or unreadable one."""
        try:
            d = json.loads(text)
        except ValueError:
            return None
        if not isinstance(d, dict):
            return None
        pid = d.get("pid")
        return cls(host=_str(d.get("host")), pid=pid if isinstance(pid, int) and not isinstance(pid, bool) else None,
                   job_id=_str(d.get("job_id")), since=_str(d.get("since")))

    def describe(self) -> str:
        """``Slurm job 12_3, since 2026-...``: the parts the message names besides pid and host."""
        parts = ([f"Slurm job {self.job_id}"] if self.job_id else []) + ([f"since {self.since}"] if self.since else [])
        return ", ".join(parts)


def _str(value: object) -> str | None:
    return str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) and value != "" else None


def holder_line() -> str:
    """This process as a lock holder: one JSON line (host, pid, Slurm job, start time)."""
    return json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "job_id": slurm_job_id(),
                       "since": now_iso()}, sort_keys=True) + "\n"


def default_wait_s(env: Mapping[str, str] = os.environ) -> float:
    """How long a trainer waits for a busy folder: ``REQUEUE_WAIT_S`` in a requeued Slurm attempt
    (``SLURM_RESTART_COUNT`` > 0: the previous attempt of the same job may still be saving and exiting),
    0 otherwise (a duplicate should hear it at once)."""
    try:
        restarts = int(env.get("SLURM_RESTART_COUNT", "0") or 0)
    except ValueError:
        restarts = 0
    return REQUEUE_WAIT_S if restarts > 0 else 0.0


def use_flock_default(env: Mapping[str, str] = os.environ) -> bool:
    """flock unless ``MTL_RUN_LOCK=excl`` (a mount where flock is accepted but only node-local, such as
    Lustre's ``localflock`` or NFS's ``local_lock=flock``: there it would not see a trainer on another node)."""
    return env.get("MTL_RUN_LOCK", "flock").strip().lower() != "excl"


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this host (another user's counts: PermissionError)."""
    if pid <= 0:                  # 0 and negatives name process groups, not a holder
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except (OverflowError, ValueError, OSError):
        return False
    return True


def is_stale(holder: Holder | None, age_s: float, stale_after_s: float = STALE_AFTER_S,
             host: str | None = None) -> bool:
    """The fallback's stale rule, for a ``.lock.excl`` left by ``holder`` and last refreshed ``age_s`` ago.

    - same host: stale when its pid is not alive (``os.kill(pid, 0)`` says no such process);
    - another host (or a holder that cannot be read): stale when the file was not refreshed for
      ``stale_after_s`` (a live holder refreshes it every ``REFRESH_S``, at most a quarter of that age),
      since a process on another host cannot be asked.
    A reused pid makes a dead holder look alive: the lock is then refused, never wrongly taken.
    """
    here = host or socket.gethostname()
    if holder is not None and holder.host == here and holder.pid is not None:
        return not pid_alive(holder.pid)
    return age_s > stale_after_s


# Lock fds held by this process: a forked child (DataLoader workers) closes its copies at once, so the lock
# dies with the trainer even while a child lingers (flock belongs to the open file, which a child shares).
_HELD: set[int] = set()


def _close_held_in_child() -> None:
    for fd in list(_HELD):
        try:
            os.close(fd)
        except OSError:
            pass
    _HELD.clear()


os.register_at_fork(after_in_child=_close_held_in_child)


class RunLock:
    """``with RunLock(run_dir): ...`` holds ``run_dir`` for one trainer; ``RunFolderBusy`` if another has it.

    ``wait_s``: how long to keep trying (every ``POLL_S``) before giving up; ``stop``: called between tries,
    True gives up at once (a stop signal arrived while waiting). ``use_flock`` None: ``use_flock_default()``;
    flock is still left for the fallback when the file system refuses it. The folder must exist.
    """

    def __init__(self, run_dir: Path, wait_s: float = 0.0, *, use_flock: bool | None = None,
                 stale_after_s: float = STALE_AFTER_S, stop: Callable[[], bool] | None = None):
        self.run_dir = Path(run_dir)
        self.wait_s = wait_s
        self.use_flock = use_flock_default() if use_flock is None else use_flock
        self.stale_after_s = stale_after_s
        self.stop = stop
        self.mode: str | None = None          # "flock" or "excl" while held
        self._fd: int | None = None
        self._pid = 0
        self._ino: tuple[int, int] | None = None   # the fallback file we created (not one that replaced it)
        self._refresh: threading.Event | None = None

    # -- acquire / release -----------------------------------------------------------------------
    def acquire(self) -> RunLock:
        """Take the lock (waiting up to ``wait_s``) and record this process as its holder."""
        if self.held:
            return self
        deadline = time.monotonic() + max(0.0, self.wait_s)
        while True:
            holder = self._try_flock() if self.use_flock else self._try_excl()
            if holder is None:
                self._pid = os.getpid()
                return self
            if time.monotonic() >= deadline or (self.stop is not None and self.stop()):
                raise self._busy(holder)
            time.sleep(min(POLL_S, max(0.0, deadline - time.monotonic())))

    def release(self) -> None:
        """Give the lock up (idempotent; a forked child never releases its parent's lock)."""
        fd, self._fd = self._fd, None
        if fd is None or os.getpid() != self._pid:
            return
        _HELD.discard(fd)
        self._log("released", None)
        try:
            if self.mode == "flock":
                try:
                    os.ftruncate(fd, 0)     # the holder line describes a live holder only
                except OSError:
                    pass
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
            if self.mode == "excl":
                if self._refresh is not None:
                    self._refresh.set()
                _unlink_if(self.run_dir / EXCL_NAME, self._ino)
            self.mode = None

    @property
    def held(self) -> bool:
        """Whether this process holds the lock through this object."""
        return self._fd is not None and os.getpid() == self._pid

    def __enter__(self) -> RunLock:
        return self if self.held else self.acquire()   # ``with lock.acquire():`` takes it once

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()

    def _log(self, event: str, found: Holder | None) -> None:
        """One line of ``.lock.log`` (best effort: a full disk must not stop a trainer that holds the lock).

        ``found``: on taking, the holder line a dead predecessor left, and whether its pid is alive now
        (on this host; None for another host's, which cannot be asked)."""
        rec: dict[str, Any] = {"event": event, "pid": os.getpid(), "host": socket.gethostname(),
                               "job_id": slurm_job_id(), "mode": self.mode, "at": round(time.time(), 6)}
        if event == "acquired" and found is not None:
            alive = pid_alive(found.pid) if found.host == rec["host"] and found.pid is not None else None
            rec["found"] = {"pid": found.pid, "host": found.host, "job_id": found.job_id, "alive": alive}
        try:
            fd = os.open(self.run_dir / LOG_NAME, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o666)
            try:
                os.write(fd, (json.dumps(rec, sort_keys=True) + "\n").encode("utf-8"))
            finally:
                os.close(fd)
        except OSError:
            pass

    # -- flock -----------------------------------------------------------------------------------
    def _try_flock(self) -> Holder | None:
        """One try; None when taken, else who holds it. Switches to the fallback if flock is not supported."""
        path = self.run_dir / LOCK_NAME
        for _ in range(20):
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)   # no O_TRUNC: the holder's line stays
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                holder = _read_holder(path)
                if holder is not None:
                    return holder
                time.sleep(0.01)   # taken this instant (its line not written yet) or released: look again
                continue
            except OSError as exc:
                os.close(fd)
                if exc.errno not in NO_FLOCK:
                    raise
                self.use_flock = False
                return self._try_excl()
            try:
                found = _read_holder(path)     # a line left here is a holder that died holding the lock
                _write_holder(fd)
            except BaseException:
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
                raise
            self._fd, self.mode = fd, "flock"
            _HELD.add(fd)
            self._log("acquired", found)
            return None
        return Holder()

    # -- fallback: O_EXCL file -------------------------------------------------------------------
    def _try_excl(self) -> Holder | None:
        """One try (a stale file is taken over at once); None when taken, else who holds it."""
        path = self.run_dir / EXCL_NAME
        taken_over: Holder | None = None
        for _ in range(3):
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
            except FileExistsError:
                found = _read_excl(path)
                if found is None:        # gone since: try again
                    continue
                holder, st = found
                if not is_stale(holder, time.time() - st.st_mtime, self.stale_after_s):
                    return holder or Holder()
                _take_aside(path, st)    # then try again
                taken_over = holder
                continue
            try:
                _write_holder(fd)
            except BaseException:
                os.close(fd)
                os.unlink(path)
                raise
            st = os.fstat(fd)
            self._fd, self.mode, self._ino = fd, "excl", (st.st_ino, st.st_dev)
            _HELD.add(fd)
            self._start_refresh(path)
            self._log("acquired", taken_over)
            return None
        return Holder()

    def _start_refresh(self, path: Path) -> None:
        """Keep the file's mtime fresh, so another host's trainer does not judge a long run's lock stale."""
        every = min(REFRESH_S, self.stale_after_s / 4)
        done = self._refresh = threading.Event()

        def refresh() -> None:
            while not done.wait(every):
                try:
                    os.utime(path)
                except OSError:
                    pass

        threading.Thread(target=refresh, name="run-lock-refresh", daemon=True).start()

    def _busy(self, holder: Holder) -> RunFolderBusy:
        who = holder.describe()
        waited = f"; waited {self.wait_s:.0f} s" if self.wait_s > 0 else ""
        stop = (f"pid {holder.pid} on host {holder.host}" if holder.pid is not None and holder.host else
                f"the holder is not named in {self.run_dir / (LOCK_NAME if self.use_flock else EXCL_NAME)}")
        return RunFolderBusy(f"run folder {self.run_dir} is busy: another trainer is writing it"
                             f"{f' ({who})' if who else ''}{waited}; wait for it or stop it ({stop})",
                             holder_host=holder.host, holder_pid=holder.pid)


def _read_holder(path: Path) -> Holder | None:
    try:
        return Holder.parse(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return None


def _write_holder(fd: int) -> None:
    """Replace the lock file's content with this process's holder line, in place, and fsync it."""
    data = holder_line().encode("utf-8")
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)
    os.fsync(fd)


def _unlink_if(path: Path, ino: tuple[int, int] | None) -> None:
    """Remove ``path`` if it is still the file ``ino`` (a stale-lock takeover may have replaced it)."""
    try:
        st = os.stat(path)
        if ino is None or (st.st_ino, st.st_dev) == ino:
            os.unlink(path)
    except FileNotFoundError:
        pass


def _read_excl(path: Path) -> tuple[Holder | None, os.stat_result] | None:
    """A fallback lock file's holder and stat, or None when it is gone."""
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            text = f.read(4096).decode("utf-8", "replace")
    except FileNotFoundError:
        return None
    return Holder.parse(text), st


def _take_aside(path: Path, judged: os.stat_result) -> None:
    """Remove the stale lock file judged ``judged``, but not a fresh one another trainer put there since.

    Renamed aside first (atomic: of two trainers that judged it stale only one gets it), then checked to be
    the judged file; a fresh one is linked back (best effort: three trainers racing here could still meet).
    """
    aside = path.with_name(f"{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return
    try:
        st = os.stat(aside)
        if (st.st_ino, st.st_dev) != (judged.st_ino, judged.st_dev):
            try:
                os.link(aside, path)
            except FileExistsError:
                pass
    finally:
        os.unlink(aside)


def read_log(run_dir: Path) -> list[dict[str, object]]:
    """``.lock.log`` of a run folder, line by line (a torn last line, from a kill mid-write, is skipped)."""
    return read_jsonl(Path(run_dir) / LOG_NAME)


def holds_overlapped(log: Sequence[Mapping[str, object]]) -> list[str]:
    """Where ``.lock.log`` shows two holders at once, in words; empty when every hold ended before the next.

    A hold ends with its ``released`` line, or, when its holder died holding the lock (SIGKILL), the next
    taker finds its line in the lock file; a taker that found the last holder still alive, or that took the
    lock while the last holder had neither released it nor been found dead, is an overlap.
    """
    problems, holder = [], None
    for rec in log:
        who = f"pid {rec.get('pid')} on {rec.get('host')}"
        if rec.get("event") == "acquired":
            found = rec.get("found")
            if isinstance(found, dict) and found.get("alive"):
                problems.append(f"{who} took the lock while pid {found.get('pid')} was alive")
            elif holder is not None and not (isinstance(found, dict) and found.get("pid") == holder.get("pid")):
                problems.append(f"{who} took the lock while pid {holder.get('pid')} held it")
            holder = rec
        elif rec.get("event") == "released":
            if holder is None or holder.get("pid") != rec.get("pid"):
                problems.append(f"{who} released a lock it did not hold")
            holder = None
    return problems


def lock_run_folder(run_dir: Path, wait_s: float | None = None) -> RunLock:
    """The trainer's lock on ``run_dir``, taken (the folder is created first: mkdir writes nothing inside).

    ``wait_s`` None: ``default_wait_s()``. Raises RunFolderBusy; but when a stop signal (SIGTERM, SIGUSR2)
    arrived while it waited, Interrupted (exit 75): a requeued attempt that Slurm stops again must be
    requeued again, not fail.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = RunLock(run_dir, default_wait_s() if wait_s is None else wait_s, stop=lambda: pending() is not None)
    try:
        return lock.acquire()
    except RunFolderBusy:
        early = pending()
        if early is not None:
            raise Interrupted(f"{early.name} received while waiting for {run_dir} to be free; "
                              f"start again to resume") from None
        raise

"""Stop signals (SIGUSR2 for a time limit, SIGTERM for preemption or scancel), caught from process start.

Slurm may signal a job seconds after it starts, while the trainer is still importing torch. The trainer's
entry point installs the handler first thing, so such a signal is recorded, not fatal: the run then stops
before its attempt begins and the job is requeued. Nothing here imports torch.
"""
from __future__ import annotations

import signal
import subprocess
import threading
from contextlib import contextmanager
from types import FrameType
from typing import Any, Iterator, Sequence

STOP_SIGNALS = (signal.SIGUSR2, signal.SIGTERM)


class StopRequest:
    """Set by SIGUSR2/SIGTERM; the loop acts on it at the next step boundary, not in the handler."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def __call__(self, signum: int, _frame: FrameType | None) -> None:
        self.signum = signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum else ""


_early: StopRequest | None = None


def install_early() -> StopRequest:
    """At process start (main thread): record stop signals from now on; ``stop_signals`` adopts them."""
    global _early
    if _early is None:
        _early = StopRequest()
        for s in STOP_SIGNALS:
            signal.signal(s, _early)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)   # see spawn_shielded: pending ones land now
    return _early


def spawn_shielded(cmd: Sequence[str], **popen_kw: Any) -> subprocess.Popen:
    """Start a trainer with the stop signals blocked; its ``install_early`` unblocks them.

    A signal in the few milliseconds before the child's interpreter installs its handler then waits
    instead of killing it. The mask is restored in this process at once (signals held here land then).
    """
    old = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        return subprocess.Popen(list(cmd), **popen_kw)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def pending() -> StopRequest | None:
    """The early request if a stop signal already arrived, else None."""
    return _early if _early is not None and _early.signum else None


@contextmanager
def stop_signals(enabled: bool) -> Iterator[StopRequest]:
    """Install the stop handlers for the duration of a run (main thread only), then restore.

    A request installed at process start is reused, so a signal that came before the run is not lost.
    """
    req = _early if enabled and _early is not None else StopRequest()
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield req
        return
    old = {s: signal.signal(s, req) for s in STOP_SIGNALS}
    try:
        yield req
    finally:
        for s, h in old.items():
            signal.signal(s, h)

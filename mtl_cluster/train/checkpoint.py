"""Checkpoints: atomic saves, keep the last two, resume from the newest readable one.

A checkpoint is state_dicts + counters + the config signature, loaded with ``weights_only=True``.
A damaged file is renamed ``*.damaged`` (kept for a human, never loaded again) and the older one used.
"""
from __future__ import annotations

import io
import logging
import re
import threading
import time
from pathlib import Path
from typing import Any, TypedDict, TypeGuard

import torch

from ..errors import CheckpointError
from ..fsio import atomic_write

log = logging.getLogger(__name__)

KEEP = 2
FORMAT = 1
_NAME = re.compile(r"^ckpt-e(\d{4,})-s(\d{6,})\.pt$")


class Checkpoint(TypedDict):
    """What a checkpoint holds (besides its ``FORMAT``, which ``save_checkpoint`` adds and ``_read`` checks)."""

    signature: str                    # the config signature: a changed config never resumes from it
    epoch: int                        # the epoch being trained (0-based)
    step: int                         # the next step to run in it
    data: dict[str, str]              # "<split>:<task>" -> ImageSet.identity(): resuming on other data is refused
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    scheduler: dict[str, Any]         # {} without a scheduler that keeps state
    run: dict[str, Any]               # loop.RunState as a dict


def checkpoint_name(epoch: int, step: int) -> str:
    """``ckpt-e<epoch>-s<step>.pt``: the epoch being trained and the next step to run in it."""
    return f"ckpt-e{epoch:04d}-s{step:06d}.pt"


def list_checkpoints(folder: Path) -> list[Path]:
    """Checkpoint files, oldest first by (epoch, step)."""
    if not folder.is_dir():
        return []
    found = [(tuple(map(int, m.groups())), p) for p in folder.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def save_checkpoint(folder: Path, state: Checkpoint) -> Path:
    """Write ``state`` atomically as the newest checkpoint and prune to the last ``KEEP``.

    If the write fails (disk full...), the previous checkpoints are untouched and the OSError propagates
    (serialised in memory first: torch.save straight into a file turns ENOSPC into a RuntimeError).
    """
    path = folder / checkpoint_name(state["epoch"], state["step"])
    buf = io.BytesIO()
    torch.save({"format": FORMAT, **state}, buf)
    atomic_write(path, lambda f: f.write(buf.getbuffer()))
    for old in list_checkpoints(folder)[:-KEEP]:
        old.unlink(missing_ok=True)
    return path


def snapshot(obj: Any) -> Any:
    """A copy of nested state with every tensor cloned to the CPU: what training may change next is not shared."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: snapshot(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(snapshot(v) for v in obj)
    return obj


class CheckpointWriter:
    """Writes checkpoints in a background thread so training does not wait for pickling and fsync.

    ``save`` copies the state (the only part training waits for) and returns; the write of the previous
    save is joined first, and ``wait`` joins the last one, raising its error (disk full...) if it failed.
    A checkpoint file only appears, whole, when its write has finished (atomic rename).
    """

    def __init__(self, folder: Path, background: bool = True):
        self.folder, self.background = folder, background
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def save(self, state: Checkpoint) -> float:
        """Start saving ``state``; returns the seconds the caller was blocked."""
        t0 = time.monotonic()
        self.wait()
        snap = snapshot(state)
        if not self.background:
            save_checkpoint(self.folder, snap)
            return time.monotonic() - t0
        self._thread = threading.Thread(target=self._write, args=(snap,), name="checkpoint", daemon=True)
        self._thread.start()
        return time.monotonic() - t0

    def _write(self, snap: Checkpoint) -> None:
        try:
            save_checkpoint(self.folder, snap)
        except BaseException as exc:  # noqa: BLE001 - handed to the training thread by wait()
            self._error = exc

    def wait(self) -> None:
        """Block until the last save is on disk; re-raise its error."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            err, self._error = self._error, None
            raise err


def _is_checkpoint(state: object) -> TypeGuard[Checkpoint]:
    """What ``torch.load`` read is a checkpoint of this format."""
    return isinstance(state, dict) and state.get("format") == FORMAT and "model" in state


def _read(path: Path) -> Checkpoint:
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not _is_checkpoint(state):
        raise ValueError("not a checkpoint of this format")
    return state


def try_read(path: Path) -> tuple[Checkpoint | None, str | None]:
    """(the checkpoint, None), or (None, why it is damaged in one line)."""
    try:
        return _read(path), None
    except Exception as exc:  # noqa: BLE001 - truncated zip, bad pickle, wrong content: all "damaged"
        return None, f"{type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}"


def clear_partial(folder: Path) -> list[str]:
    """Remove the temp files of checkpoint writes that a kill interrupted (``.ckpt-*.tmp``); their names.

    Only the run's own trainer writes in its checkpoints folder, and it calls this before it writes.
    """
    gone = []
    for p in folder.glob(".ckpt-*.tmp") if folder.is_dir() else []:
        p.unlink(missing_ok=True)
        gone.append(p.name)
    return gone


def load_latest(folder: Path, signature: str | None) -> tuple[Checkpoint, Path] | None:
    """The run's newest readable checkpoint, or None if there is none.

    Damaged files are renamed aside (``*.damaged``, kept) and the previous one is tried; only the run's own
    trainer calls this (a fine-tune reads its parent through ``load_init``, which never falls back or
    writes). A checkpoint of another config is refused (``signature`` None accepts any).
    """
    for path in reversed(list_checkpoints(folder)):
        state, why = try_read(path)
        if state is None:
            aside = path.with_name(path.name + ".damaged")
            log.warning("checkpoint %s is damaged (%s); moved to %s, trying the previous one",
                        path.name, why, aside.name)
            path.replace(aside)
            continue
        if signature is not None and state.get("signature") != signature:
            raise CheckpointError(
                f"{path}: checkpoint belongs to config signature {state.get('signature')}, this run is "
                f"{signature}; use a new --run-dir for a changed config (or delete {folder} to start over)")
        return state, path
    return None


def load_init(source: Path) -> dict[str, torch.Tensor]:
    """Model weights to initialise from: a run folder's final (newest) checkpoint, or a checkpoint file.

    Never an older checkpoint of the folder: a fine-tune started from an earlier epoch's weights than its
    parent's final ones would be a different experiment under the same name. A damaged newest file is
    refused with the fix (the parent, run again, retrains from its previous checkpoint), and the parent's
    folder is left as it is.
    """
    source = Path(source).expanduser()
    if source.is_dir():
        folder = source / "checkpoints" if (source / "checkpoints").is_dir() else source
        found = list_checkpoints(folder)
        if not found:
            raise CheckpointError(f"init_checkpoint: no checkpoint in {source}; has that run trained yet?")
        state, why = try_read(found[-1])
        if state is None:
            raise CheckpointError(
                f"init_checkpoint: {found[-1]} is damaged ({why}); a fine-tune starts only from its parent's "
                f"final weights: run mtl-launch again with --force (the parent retrains its last steps from its "
                f"previous checkpoint first)")
        return state["model"]
    if not source.is_file():
        raise CheckpointError(f"init_checkpoint: no such file or run folder {source}")
    try:
        return _read(source)["model"]
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user problem
        raise CheckpointError(f"init_checkpoint: cannot read {source} ({type(exc).__name__})") from None

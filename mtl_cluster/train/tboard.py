"""TensorBoard event files in each run folder (``<run>/tensorboard/``), so ``tensorboard --logdir results/``
shows every run's curves while it trains.

Optional: without the ``tensorboard`` package (``pip install -e .[tensorboard]``) one log line says how to
turn it on and nothing else changes. One point per epoch and split, at step = epoch. A resumed attempt opens
its writer with ``purge_step`` = the epoch it is about to train, so events an interrupted attempt wrote for
that epoch or later are dropped by TensorBoard's readers: no step appears twice. The event files are, like
timings.jsonl, outside the byte-identical resume checks (they hold wall-clock times).
"""
from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

log = logging.getLogger(__name__)
FOLDER = "tensorboard"
_NOT_SCALARS = frozenset({"epoch", "split"})


class EventLog:
    """The run's TensorBoard writer, or nothing when the package is not installed."""

    def __init__(self, run_dir: Path, next_epoch: int):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            log.info("TensorBoard events: off (pip install -e '.[tensorboard]' to write them)")
            self._w: Any = None
            return
        self._w = SummaryWriter(log_dir=str(Path(run_dir) / FOLDER), purge_step=next_epoch)

    def epoch(self, records: Sequence[Mapping[str, float | str]], extra: Mapping[str, float]) -> None:
        """One epoch's metrics.jsonl lines (train, val, test) as ``<split>/<key>``, and ``extra`` as ``run/<key>``."""
        if self._w is None:
            return
        for rec in records:
            step = int(rec["epoch"])
            for key, value in rec.items():
                if key in _NOT_SCALARS or key.endswith("_n") or not isinstance(value, (int, float)):
                    continue
                if math.isfinite(float(value)):
                    self._w.add_scalar(f"{rec['split']}/{key}", float(value), step)
        for key, value in extra.items():
            self._w.add_scalar(f"run/{key}", float(value), int(records[0]["epoch"]))
        self._w.flush()

    def close(self) -> None:
        if self._w is not None:
            self._w.close()
            self._w = None

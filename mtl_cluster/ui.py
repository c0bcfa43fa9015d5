"""Terminal output: rich tables and progress on a terminal, plain lines otherwise. No business logic."""
from __future__ import annotations

import logging
import sys
from typing import Any

from rich.console import Console
from rich.table import Table

METRIC_LABELS = {
    "gender_acc": "Gender (%)", "smile_acc": "Smile (%)", "emotion_acc": "Emotion (%)",
    "age_acc": "Age acc (%)", "age_mae": "Age MAE", "age_mae_argmax": "Age MAE (argmax)", "loss": "loss",
}


def stderr_console() -> Console:
    return Console(stderr=True, highlight=False)


def stdout_console() -> Console:
    return Console(highlight=False)


def setup_logging(verbose: bool = False) -> None:
    """Library log records -> stderr as short plain lines (the run's log.txt gets its own handler)."""
    logger = logging.getLogger("mtl_cluster")
    if any(getattr(h, "_mtl_console", False) for h in logger.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    handler.setLevel(logging.DEBUG if verbose else logging.INFO)
    handler.addFilter(lambda record: not getattr(record, "file_only", False))
    handler._mtl_console = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)


def summary_table(summary: dict[str, Any]) -> Table:
    """Final and best-epoch validation metrics of one run, with the dataset behind each task."""
    table = Table(title=f"{summary['name']}  ({summary['signature']}, {summary['epochs']} epochs)")
    table.add_column("metric")
    table.add_column("dataset / split")
    table.add_column(f"final (epoch {summary['epochs']})", justify="right")
    table.add_column(f"best (epoch {summary['best_epoch']})", justify="right")
    final, best = summary["final"]["val"] or {}, summary["best"]["val"] or {}
    for key, label in METRIC_LABELS.items():
        if key not in final:
            continue
        task = key.split("_")[0] if key != "loss" else None
        where = f"{summary['datasets'][task]} / {summary['eval_splits'][task]}" if task else "all tasks"
        table.add_row(label, where, f"{final[key]:.2f}", f"{best.get(key, float('nan')):.2f}")
    return table


class EpochPrinter:
    """Progress callback for a training run: rich bars on a terminal (image cache, epoch), lines otherwise."""

    def __init__(self, console: Console, total_epochs: int):
        self.console = console
        self.total = total_epochs
        self.bar = None
        self.cache_task: Any = None
        if console.is_terminal:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TimeElapsedColumn(), console=console, transient=True)
            self.task = self.bar.add_task(f"epoch 1/{total_epochs}", total=None)
            self.bar.start()

    def __call__(self, event: str, info: dict[str, Any]) -> None:
        if self.bar is not None and event == "step":
            self.bar.update(self.task, completed=info["step"], total=info["steps"],
                            description=f"epoch {info['epoch']}/{self.total}")
        elif event == "cache":
            self._cache(info)

    def _cache(self, info: dict[str, Any]) -> None:
        """The image cache being built: a bar per split on a terminal, one line per split otherwise."""
        label = f"decoding {info['split']}:{info['task']} into the image cache"
        done = info["done"] == info["total"]
        if self.bar is None:
            if done:
                self.console.print(f"{label}: {info['total']} images")
            return
        if self.cache_task is None:
            self.cache_task = self.bar.add_task(label, total=info["total"])
        self.bar.update(self.cache_task, completed=info["done"])
        if done:
            self.bar.remove_task(self.cache_task)
            self.cache_task = None

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()

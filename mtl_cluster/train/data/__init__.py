"""Per-task data for a run: the registry's source for each active task (mtl_cluster/datasets.py), loaded only
for the active tasks."""
from __future__ import annotations

import functools
import importlib
from types import ModuleType
from typing import Callable

from ...config import TrainConfig
from ...datasets import DATASET_TASKS, DATASETS, SOURCES, SYNTHETIC, source_of
from ...errors import DataError
from .base import TaskData


def load_task(task: str, cfg: TrainConfig) -> TaskData:
    """The TaskData of one active task, from the source the registry routes it to."""
    source = source_of(cfg.dataset, task, cfg.data.synthetic)
    if source is None:
        from .synthetic import load_synthetic
        return load_synthetic(task, cfg.data, synthetic_seed(cfg), cfg.image_size)
    return _loader(source).load_task(task, cfg.data)


def _loader(source: str) -> ModuleType:
    """A source's loader module (mtl_cluster/train/data/<Source.module>.py: ``load_task(task, data)``, and
    ``train_size(data)`` where counting is cheaper than loading), imported when a run needs it."""
    return importlib.import_module(f".{SOURCES[source].module}", __name__)


def synthetic_seed(cfg: TrainConfig) -> int:
    """The generator seed: the run's seed, moved per dataset when synthetic images stand in for one,
    so that the stand-ins for IMDB-WIKI and ChaLearn are different images (as the real sets are)."""
    if cfg.dataset == SYNTHETIC:
        return cfg.seed
    return cfg.seed + 1_000_003 * list(DATASETS).index(cfg.dataset)


def load_tasks(cfg: TrainConfig) -> dict[str, TaskData]:
    """TaskData for every task with a non-zero weight: a single-task run touches one dataset only."""
    return {task: load_task(task, cfg) for task in cfg.active_tasks}


def train_sizes(cfg: TrainConfig) -> dict[str, int | None]:
    """Training-set size (after the hold-out) of every task the config's dataset labels, active or not.

    The equal-budget epoch is the smallest training set of ALL the dataset's tasks, so that every row
    of a table section trains on the same number of samples whichever tasks it has. None for a task
    whose data cannot be found or read (the caller logs it). Cheap where it can be: synthetic draws
    nothing, FER2013 counts rows without decoding pixels, a source whose tasks share one file list is
    counted once; the others only list files.
    """
    sizes: dict[str, int | None] = {}
    counted: dict[str, int | None] = {}       # one_file_list sources: one count for all their tasks
    for task in DATASET_TASKS[cfg.dataset]:
        source = source_of(cfg.dataset, task, cfg.data.synthetic)
        if source is None:
            sizes[task] = cfg.data.synthetic_task_sizes.get(task, cfg.data.synthetic_train_size)
        elif source in counted:
            sizes[task] = counted[source]
        else:
            counter = getattr(_loader(source), "train_size", None)
            sizes[task] = _size_or_none(functools.partial(counter, cfg.data) if counter is not None
                                        else functools.partial(_train_len, task, cfg))
        if source is not None and SOURCES[source].one_file_list:
            counted[source] = sizes[task]
    return sizes


def _train_len(task: str, cfg: TrainConfig) -> int:
    return len(load_task(task, cfg).train)


def _size_or_none(count: Callable[[], int]) -> int | None:
    try:
        return count()
    except DataError:
        return None

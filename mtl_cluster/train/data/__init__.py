"""Per-task data for a run: which dataset serves which task, loaded only for the active tasks."""
from __future__ import annotations

import functools
from typing import Callable

from ...config import DATASETS, TrainConfig
from ...errors import DataError
from ...tasks import DATASET_TASKS
from .base import TaskData


def load_task(task: str, cfg: TrainConfig) -> TaskData:
    """The TaskData of one active task, from the dataset family the config names."""
    if cfg.dataset == "synthetic" or cfg.data.synthetic:
        from .synthetic import load_synthetic
        return load_synthetic(task, cfg.data, synthetic_seed(cfg), cfg.image_size)
    if cfg.dataset == "IMDB-WIKI":
        from .imdb_wiki import load_imdb_wiki
        return load_imdb_wiki(task, cfg.data)
    if task == "emotion":
        from .fer2013 import load_fer2013
        return load_fer2013(cfg.data)
    from .chalearn import load_chalearn
    return load_chalearn(task, cfg.data)


def synthetic_seed(cfg: TrainConfig) -> int:
    """The generator seed: the run's seed, moved per dataset when synthetic images stand in for one,
    so that the stand-ins for IMDB-WIKI and ChaLearn are different images (as the real sets are)."""
    if cfg.dataset == "synthetic":
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
    nothing, FER2013 counts rows without decoding pixels; the others only list files.
    """
    tasks = DATASET_TASKS[cfg.dataset]
    if cfg.dataset == "synthetic" or cfg.data.synthetic:
        return {task: cfg.data.synthetic_task_sizes.get(task, cfg.data.synthetic_train_size) for task in tasks}
    if cfg.dataset == "IMDB-WIKI":   # gender and age are the same files, cleaned and split the same way
        n = _size_or_none(lambda: len(load_task("age", cfg).train))
        return {task: n for task in tasks}
    sizes: dict[str, int | None] = {}
    for task in tasks:
        if task == "emotion":
            from .fer2013 import fer2013_train_size
            sizes[task] = _size_or_none(lambda: fer2013_train_size(cfg.data))
        else:
            sizes[task] = _size_or_none(functools.partial(_train_len, task, cfg))
    return sizes


def _train_len(task: str, cfg: TrainConfig) -> int:
    return len(load_task(task, cfg).train)


def _size_or_none(count: Callable[[], int]) -> int | None:
    try:
        return count()
    except DataError:
        return None

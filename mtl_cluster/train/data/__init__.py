"""Per-task data for a run: which dataset serves which task, loaded only for the active tasks."""
from __future__ import annotations

from ...config import TrainConfig
from .base import TaskData


def load_task(task: str, cfg: TrainConfig) -> TaskData:
    """The TaskData of one active task, from the dataset family the config names."""
    if cfg.dataset == "synthetic":
        from .synthetic import load_synthetic
        return load_synthetic(task, cfg.data, cfg.seed, cfg.image_size)
    if cfg.dataset == "IMDB-WIKI":
        from .imdb_wiki import load_imdb_wiki
        return load_imdb_wiki(task, cfg.data)
    if task == "emotion":
        from .fer2013 import load_fer2013
        return load_fer2013(cfg.data)
    from .chalearn import load_chalearn
    return load_chalearn(task, cfg.data)


def load_tasks(cfg: TrainConfig) -> dict[str, TaskData]:
    """TaskData for every task with a non-zero weight: a single-task run touches one dataset only."""
    return {task: load_task(task, cfg) for task in cfg.active_tasks}

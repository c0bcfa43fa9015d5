"""Per-task data for a run: which dataset serves which task, loaded only for the active tasks."""
from __future__ import annotations

from ...config import DATASETS, TrainConfig
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

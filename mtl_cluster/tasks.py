"""The four tasks, their label spaces, the age-loss variants and the metrics: the vocabulary every part shares.

Pure Python (no torch) so the config validator, the collector, the status view and the trainer all read
the same lists. Adding a metric or a table column is one entry in ``METRICS``.
"""
from __future__ import annotations

from dataclasses import dataclass

TASKS: tuple[str, ...] = ("gender", "smile", "emotion", "age")

EMOTIONS: tuple[str, ...] = ("Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral")
"""FER2013's label order: class k is EMOTIONS[k]."""

NUM_CLASSES: dict[str, int] = {"gender": 2, "smile": 2, "emotion": len(EMOTIONS)}

AGE_CLASSES = 100   # age 1..100 -> class age-1 (clamped)
AGE_GROUPS = 10     # decade: age 0..9 -> 0, ..., 90..100 -> 9 (the seed's ceil(class / 10) made 11; docs/table.md)

AGE_LOSS_TYPES: dict[str, str] = {
    "age_cls_loss": "100 age classes, cross-entropy (seed row AlexNet-Age)",
    "age_100_10_cls_loss": "100 classes + 10 decade groups, both cross-entropies summed "
                           "(seed row AlexNet-Age-100-class-10-classes-crossentropy)",
    "age_10_cls_loss": "10 decade groups only, cross-entropy "
                       "(seed row AlexNet-Age-10-classes-crossentropy)",
}
AGE_HEADS: dict[str, tuple[str, ...]] = {
    "age_cls_loss": ("age",), "age_100_10_cls_loss": ("age", "age_group"), "age_10_cls_loss": ("age_group",),
}
"""The age head's outputs per age_loss_type: ``age`` = 100 classes, ``age_group`` = 10 groups."""

SPLITS: tuple[str, ...] = ("train", "val", "test")
"""metrics.jsonl splits: train (running sums), val (selects epochs), test (the reported numbers)."""


@dataclass(frozen=True)
class Metric:
    """One number the trainer records per task and split, and the table can show as a column."""

    key: str                 # metrics.jsonl / summary.json key
    task: str
    header: str              # the table's column header (the seed's words where the seed had the column)
    lower_is_better: bool = False
    decimals: int = 1
    needs: str | None = None  # the age head output it needs ("age", "age_group"); None: any run of the task
    seed: bool = True        # the seed's own definition (False: a better one shown beside it)
    short: str = ""          # compact label for logs and mtl-status
    optional: bool = False   # recorded only where the data allows it (ε-error: labels with a std)
    per_image: str | None = "correct"   # predictions.json field of its per-image result (paired tests); None: none


METRICS: tuple[Metric, ...] = (
    Metric("gender_acc", "gender", "Gender(%)", short="gender"),
    Metric("smile_acc", "smile", "Smile(%)", short="smile"),
    Metric("emotion_acc", "emotion", "Emotion Acc(%)", short="emotion"),
    Metric("age_acc", "age", "Age Acc(%)", needs="age", short="age acc"),
    Metric("age_group_acc", "age", "Age 10-group Acc(%)", needs="age_group", seed=False, short="age grp"),
    Metric("age_mae_argmax", "age", "Age MAE", lower_is_better=True, decimals=2, short="age MAE",
           per_image="ae_argmax"),
    Metric("age_mae", "age", "Age MAE (expected)", lower_is_better=True, decimals=2, seed=False,
           short="age MAE(E)", per_image="ae"),
    Metric("age_eps", "age", "Age ε-error", lower_is_better=True, decimals=3, seed=False, short="age ε",
           optional=True, per_image=None),   # ChaLearn's 1 - exp(-(x - μ)² / 2σ²) of the expected age, where σ is known
)
"""Column order of every table: the seed's columns, each better definition right after its seed one."""

METRIC_BY_KEY: dict[str, Metric] = {m.key: m for m in METRICS}


@dataclass(frozen=True)
class CostColumn:
    """One cost column of ``mtl-collect --cost``: a row's mean per run over its seeds (``mtl_cluster.collect.cost``)."""

    key: str
    header: str
    decimals: int
    meaning: str             # the docs' and the table note's words for it
    optional: bool = False   # shown only when some run of the table has it (Slurm's accounting, the usage records)
    agg: str = "mean"        # a row's figure over its runs: "mean" per run, or "max" (the peaks: what a limit must fit)


COST_COLUMNS: tuple[CostColumn, ...] = (
    CostColumn("trainable_params", "Params", 0, "trainable parameters (summary.json)"),
    CostColumn("gpu_hours", "GPU-hours", 2, "wall time of every attempt x the GPUs its job held"),
    CostColumn("sacct_gpu_hours", "GPU-hours (sacct)", 2,
               "Slurm's accounting: elapsed time of each of the run's jobs (requeues included) x the GPUs allocated",
               optional=True),
    CostColumn("wall_hours", "Wall-hours", 2, "wall time of every attempt, start to end"),
    CostColumn("images_per_s", "Images/s", 0, "training images per second of epoch time (train + evaluation)"),
    CostColumn("epochs_recomputed", "Epochs recomputed", 2,
               "epochs (and parts of epochs) trained again because an attempt ended past its last checkpoint"),
    CostColumn("host_peak_mib", "Peak host MiB", 0,
               "the most resident memory an attempt's trainer process held, plus its largest DataLoader worker's "
               "(attempts.jsonl usage)", optional=True, agg="max"),
    CostColumn("sacct_rss_mib", "MaxRSS MiB (sacct)", 0,
               "the most resident memory a step of the run's jobs held, as Slurm's accounting measured it: the whole "
               "job (the trainer, its DataLoader workers, the job's wrapper), requeues included", optional=True,
               agg="max"),
    CostColumn("sacct_cpu_used", "CPU used (%, sacct)", 0,
               "Slurm's TotalCPU of the run's jobs over their elapsed time x the CPUs they held: how much of the CPUs "
               "it asked for it used", optional=True),
    CostColumn("limit_used", "Time limit used (%)", 0,
               "the largest share of its Slurm time limit an attempt's trainer ran (the job's start-up before the "
               "trainer is not in it)", optional=True, agg="max"),
    CostColumn("gpu_peak_mib", "Peak GPU MiB", 0, "the most GPU memory torch allocated in an attempt",
               optional=True, agg="max"),
    CostColumn("gpu_util", "GPU util (%)", 0, "the GPU's mean utilisation while the attempts ran (NVML or "
               "nvidia-smi samples), weighted by their length", optional=True),
)
COST_BY_KEY: dict[str, CostColumn] = {c.key: c for c in COST_COLUMNS}
TASK_METRICS: dict[str, tuple[Metric, ...]] = {t: tuple(m for m in METRICS if m.task == t) for t in TASKS}


def folder_sub_name(loss_weights: tuple[float, ...]) -> str:
    """The seed's folder tag, e.g. ``_gender_1_smile_0_emotion_0_age_0``, so old users recognise runs."""
    return "".join(f"_{t}_{w:g}" for t, w in zip(TASKS, loss_weights))


def active_tasks(loss_weights: tuple[float, ...] | list[float]) -> tuple[str, ...]:
    """Tasks with a non-zero weight: the only ones that get a head, data and compute."""
    return tuple(t for t, w in zip(TASKS, loss_weights) if w > 0)


def run_metrics(tasks: tuple[str, ...] | list[str], age_loss_type: str | None) -> tuple[Metric, ...]:
    """The metrics a run with these tasks (and age head) always records, in column order (not the optional)."""
    heads = AGE_HEADS.get(age_loss_type or "age_cls_loss", ("age",))
    return tuple(m for m in METRICS if m.task in tasks and (m.needs is None or m.needs in heads) and not m.optional)

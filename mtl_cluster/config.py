"""Training-run configuration: a plain mapping -> frozen, validated dataclasses, and the run signature.

Validated once, at load time, with one-line errors that name the key and the valid choices
(the habit submitit has for its parameters). Never imports torch, submitit or rich.
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from .datasets import CHALEARN, DATASETS, SOURCES, SYNTHETIC
from .errors import ConfigError
from .tasks import AGE_LOSS_TYPES, TASKS, active_tasks
from .yamlio import load_yaml_mapping

CHALEARN_LAYOUTS = SOURCES["chalearn"].layouts
IMDB_WIKI_LAYOUTS = SOURCES["imdb-wiki"].layouts
FER_SPLITS = ("PublicTest", "PrivateTest")
BACKBONE_CHOICES = ("none", "kaiming", "imagenet")
# A run name becomes one folder name under results/: letters (any script), digits, _ . + -, never a path.
RUN_NAME = re.compile(r"^[^\W_][\w.+-]*$")
MAX_NAME_BYTES = 150          # + "_seed<seed>_<signature>" stays under the file systems' 255 bytes
# Upper bounds that keep a typo from exhausting the machine before the first step.
LIMITS = {"seed": 2**32 - 1, "batch_size": 4096, "num_workers": 64}
DATA_LIMITS = {"synthetic_train_size": 100_000, "synthetic_eval_size": 100_000}
DATA_CACHE_CHOICES = ("auto", "on", "off")
SYNTHETIC_CUES = {"faces": "every label drawn as a facial feature (the default; the known-answer study's data)",
                  "bold": "faces plus two big cues: the background's hue = emotion, the picture's exposure "
                          "(background brightness and a gain on every pixel) = age, and a fifth of the lighting "
                          "jitter (the demo: every task learns in 120 steps)"}
AMP_CHOICES = ("none", "bf16")
LR_SCHEDULERS = {"plateau": "ReduceLROnPlateau on the validation total loss, /10 after lr_patience epochs "
                            "without improvement (the seed's)",
                 "step": "/10 every lr_schedule epochs",
                 "cosine": "half a cosine from lr_rate to 0 over the run's optimizer steps, set every step: a "
                           "function of the step count only, identical in every row of a section (the study's)"}
OPTIMIZERS = {"sgd": "SGD with momentum and weight_decay (the seed's)",
              "adam": "Adam (betas 0.9, 0.999; weight_decay as L2): escapes AlexNet's from-scratch plateau "
                      "reliably, for the synthetic demo and known-answer study"}
BUDGETS = {"dataset": "an epoch is the batches of the smallest training set among all the dataset's tasks "
                      "(the seed's: every row of a section trains the same steps)",
           "active": "the smallest training set among the run's active tasks only (before protocol 2)"}
PROTOCOL = 3
"""The evaluation protocol, folded into every signature: 2 = train / select on val / report on test, per-task
epoch selection, equal budgets; 3 = as 2, with hold-outs shared by every task that sees an image (keyed by its
file name, not its class folder) and by person for IMDB-WIKI, and the seed's plateau threshold (1e-5). Runs of
older protocols keep their folders and are collected with their meaning stated; the same config now trains in
a new folder."""


@dataclass(frozen=True)
class DataConfig:
    """Where each dataset lives. Relative paths are taken under ``root`` (a data root per cluster)."""

    root: str = "data"
    chalearn_layout: str = "imagefolder"
    chalearn_gender: str = "CVPR_GENDER_5_points"
    chalearn_smile: str = "CVPR_SMILE_5_points"
    chalearn_age: str = "CVPR_AGE_5_points"
    chalearn_official: str = "ChaLearn_LAP_2016_age"
    fer2013: str = "fer2013/fer2013.csv"
    fer2013_eval_split: str = "PrivateTest"
    imdb_wiki_layout: str = "aligned"
    imdb_wiki: str = "imdb_wiki"
    imdb_wiki_mat: str = "imdb_crop/imdb.mat"
    imdb_wiki_val_fraction: float = 0.05
    holdout_fraction: float = 0.1          # TRAIN hashed out as the validation split where a dataset has none
    synthetic_train_size: int = 1024
    synthetic_eval_size: int = 256
    synthetic: bool = False   # draw synthetic images in place of the dataset's files (--debug), same tasks
    # How the synthetic tasks relate (the planted answers of studies/known_answer.yaml; docs/data.md "Synthetic data"):
    synthetic_shared: tuple[str, ...] = ()      # tasks whose labels come from one shared latent (one cue drives all)
    synthetic_task_sizes: dict[str, int] = field(default_factory=dict)    # task: its first n training images only
    synthetic_label_noise: dict[str, float] = field(default_factory=dict)  # task: share of training labels randomised
    synthetic_cues: str = "faces"               # faces | bold (SYNTHETIC_CUES): how big the emotion and age cues are
    cache_dir: str = ".mtl_cache"      # pre-decoded image cache (data_cache); relative: under root
    cache_max_gb: float = 64.0         # data_cache: auto uses the cache for a split up to this size
    stage_to: str | None = None        # node-local folder ($TMPDIR, expanded in the job) the cache is copied to

    def path(self, rel: str) -> Path:
        """Resolve a dataset path against the data root (absolute paths pass through)."""
        p = Path(rel).expanduser()
        return p if p.is_absolute() else Path(self.root).expanduser() / p


@dataclass(frozen=True)
class TrainConfig:
    """Everything one training run needs; the seed's names where they exist."""

    name: str = "AlexNet-Gender_Smile_Emotion_Age"
    model: str = "MTL_AlexNet_model"
    dataset: str = CHALEARN
    loss_weights: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0)
    age_loss_type: str = "age_cls_loss"
    backbone_weights: str = "none"
    load_IMDB_WIKI_pretrained_model: bool = False
    init_from: str | None = None
    init_checkpoint: str | None = None
    image_size: int = 224
    batch_size: int = 8
    epoch: int = 40
    lr_rate: float = 0.001
    lr_schedule: int = 8
    lr_scheduler: str = "plateau"      # plateau (the seed's) | step (/10 every lr_schedule epochs) | cosine
    lr_patience: int = 10              # plateau: epochs without a better validation loss before /10
    weight_decay: float = 1e-6
    momentum: float = 0.9
    optimizer: str = "sgd"             # sgd (the seed's, with momentum) | adam (OPTIMIZERS)
    seed: int = 0
    steps_per_epoch: int | None = None
    budget: str = "dataset"            # how an epoch's steps are set when steps_per_epoch is empty (BUDGETS)
    total_steps: int | None = None     # a total optimizer-step budget: steps_per_epoch = ceil(total_steps / epoch)
    num_workers: int = 0
    checkpoint_every_min: float = 10.0
    device: str = "auto"
    data_cache: str = "auto"           # auto | on | off: pre-decoded uint8 cache + batched augmentation
    amp: str = "none"                  # none | bf16 (autocast on CUDA; the CPU stays fp32)
    channels_last: bool = True         # NHWC activations (faster on CUDA and with oneDNN on the CPU)
    compile: bool = False              # torch.compile the trunk (CUDA only)
    pin_memory: bool = True            # pinned host batches, non-blocking copies (CUDA only)
    data: DataConfig = field(default_factory=DataConfig)

    @property
    def active_tasks(self) -> tuple[str, ...]:
        return active_tasks(self.loss_weights)

    def to_dict(self) -> dict[str, Any]:
        """A plain, YAML/JSON-safe mapping (tuples as lists) that ``load_train_config`` reads back."""
        d = dataclasses.asdict(self)
        d["loss_weights"] = list(self.loss_weights)
        d["data"]["synthetic_shared"] = list(self.data.synthetic_shared)
        return d


# The default run: what ``mtl-train`` without --config trains (the base of the tests; "the demo" is always the
# study grid's --demo, scripts/demo.sh):
# a short multitask run on synthetic data (about two minutes on 2 CPU cores) in which gender, smile and
# emotion clearly learn; age, the slowest task, needs a longer or a single-task run (tests/test_learning.py).
# A --config file starts from the dataclass defaults above instead: the seed's Namespace values.
DEFAULT_RUN: dict[str, Any] = {
    "dataset": SYNTHETIC, "image_size": 64, "batch_size": 32, "epoch": 3, "lr_rate": 0.01,
    "lr_schedule": 8, "steps_per_epoch": 200,
    "data": {"synthetic_train_size": 1024, "synthetic_eval_size": 256},
}

# Keys that never change the numbers a run produces: excluded from the signature so that the same
# experiment on another cluster, with other paths or worker counts, is the same run.
# The perf switches bar ``amp`` are here too: the cache path feeds bit-identical inputs (tests/test_cache.py),
# and channels_last / compile / pin_memory change speed, not the experiment (like ``device``).
NON_RESULT_KEYS = frozenset({"name", "num_workers", "checkpoint_every_min", "device", "init_checkpoint",
                             "data_cache", "channels_last", "compile", "pin_memory"})
NON_RESULT_DATA_KEYS = frozenset({"root", "cache_dir", "cache_max_gb", "stage_to"})
# The signature hashes a run's difference from this base: every result key's value when protocol 2 began
# (flattened, data.* dotted). A key added later goes here at its default, so a config that leaves it at the
# default keeps its signature and every existing run folder keeps its name (tests/test_config.py adds a key
# and checks); a value here is never edited (that would rename every folder that used it). The collector
# groups runs by the same difference, so a config.yaml written before a key existed groups with the new ones.
SIGNATURE_BASE: dict[str, Any] = {
    "model": "MTL_AlexNet_model", "dataset": CHALEARN, "loss_weights": [1.0, 1.0, 1.0, 1.0],
    "age_loss_type": "age_cls_loss", "backbone_weights": "none", "load_IMDB_WIKI_pretrained_model": False,
    "init_from": None, "image_size": 224, "batch_size": 8, "epoch": 40, "lr_rate": 0.001, "lr_schedule": 8,
    "lr_scheduler": "plateau", "lr_patience": 10, "weight_decay": 1e-06, "momentum": 0.9, "seed": 0,
    "steps_per_epoch": None, "budget": "dataset", "total_steps": None, "amp": "none",
    "data.chalearn_layout": "imagefolder", "data.chalearn_gender": "CVPR_GENDER_5_points",
    "data.chalearn_smile": "CVPR_SMILE_5_points", "data.chalearn_age": "CVPR_AGE_5_points",
    "data.chalearn_official": "ChaLearn_LAP_2016_age", "data.fer2013": "fer2013/fer2013.csv",
    "data.fer2013_eval_split": "PrivateTest", "data.imdb_wiki_layout": "aligned", "data.imdb_wiki": "imdb_wiki",
    "data.imdb_wiki_mat": "imdb_crop/imdb.mat", "data.imdb_wiki_val_fraction": 0.05, "data.holdout_fraction": 0.1,
    "data.synthetic_train_size": 1024, "data.synthetic_eval_size": 256, "data.synthetic": False,
    "data.synthetic_shared": [], "optimizer": "sgd",   # added after protocol 2 began (synthetic_task_sizes /
    "data.synthetic_cues": "faces",                    # _label_noise too: at their default, empty mappings,
}                                                      # they flatten to no key at all)
_NOT_HASHED = {"signature", *NON_RESULT_KEYS, *(f"data.{k}" for k in NON_RESULT_DATA_KEYS)}


def flatten(raw: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as one level of dotted keys (``data.root``); tuples as lists."""
    out: dict[str, Any] = {}
    for k, v in raw.items():
        if isinstance(v, Mapping):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = list(v) if isinstance(v, tuple) else v
    return out


def result_delta(raw: Mapping[str, Any], keep: tuple[str, ...] = ()) -> dict[str, Any]:
    """The result keys of a config (a TrainConfig's dict or a run folder's config.yaml) that differ from
    SIGNATURE_BASE; a key the config lacks counts as at its base value. ``keep``: non-result keys to keep."""
    return {k: v for k, v in flatten(raw).items()
            if k in keep or (k not in _NOT_HASHED and (k not in SIGNATURE_BASE or SIGNATURE_BASE[k] != v))}


def signature(cfg: TrainConfig) -> str:
    """Short stable hash of the result-relevant config: same config, same run folder."""
    blob = json.dumps({"protocol": PROTOCOL, **result_delta(cfg.to_dict())}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def _type_name(tp: object) -> str:
    return getattr(tp, "__name__", str(tp)).replace("typing.", "")


def _coerce(where: str, value: Any, annotation: str) -> Any:
    """Check one value against its field's declared type; ints are accepted where floats are."""
    optional = "None" in annotation
    if value is None:
        if optional:
            return None
        raise ConfigError(where=where, problem=f"must not be empty (expected {annotation})")
    base = annotation.replace(" | None", "")
    if base == "bool":
        if isinstance(value, bool):
            return value
    elif base == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif base == "float":
        if isinstance(value, str):  # YAML 1.1 reads 1e-6 (no dot) as a string; users write it anyway
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(float(value)):
                raise ConfigError(where=where, problem=f"must be a finite number, got {value!r}")
            return float(value)
    elif base == "str":
        if isinstance(value, str):
            return value
    else:  # pragma: no cover - only the types declared above are used
        return value
    raise ConfigError(where=where, problem=f"expected {base}, got {type(value).__name__} {value!r}")


def build_checked(cls: type, raw: Mapping[str, Any], where: str) -> Any:
    """``cls`` from a mapping, each key known and each value of its type (one-line errors naming ``where``);
    the cross-key rules are ``validate``'s. The experiments file checks its entries through this too."""
    if not isinstance(raw, Mapping):
        raise ConfigError(where=where or "config", problem=f"expected a mapping of keys, got {type(raw).__name__}")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(str(k) for k in raw if k not in known)
    if unknown:
        raise ConfigError(where=f"{where + '.' if where else ''}{unknown[0]}",
                          problem=f"unknown key; valid keys: {', '.join(sorted(known))}")
    kwargs: dict[str, Any] = {}
    for name, value in raw.items():
        f = known[name]
        key = f"{where + '.' if where else ''}{name}"
        if name == "data":
            kwargs[name] = build_checked(DataConfig, value or {}, key)
        elif name == "loss_weights":
            kwargs[name] = _loss_weights(key, value)
        elif name == "synthetic_shared":
            kwargs[name] = _task_list(key, value)
        elif str(f.type).startswith("dict[str, "):
            kwargs[name] = _per_task(key, value, str(f.type)[len("dict[str, "):-1])
        elif name == "data_cache" and isinstance(value, bool):   # YAML 1.1 reads on/off as booleans
            kwargs[name] = "on" if value else "off"
        else:
            kwargs[name] = _coerce(key, value, str(f.type))
    return cls(**kwargs)


def _loss_weights(where: str, value: object) -> tuple[float, float, float, float]:
    if isinstance(value, Mapping):
        bad = sorted(set(map(str, value)) - set(TASKS))
        if bad:
            raise ConfigError(where=f"{where}.{bad[0]}", problem=f"unknown task; valid tasks: {', '.join(TASKS)}")
        value = [value.get(t, 0) for t in TASKS]
    if not isinstance(value, (list, tuple)) or len(value) != len(TASKS):
        raise ConfigError(where=where, problem=f"expected 4 weights in the order {', '.join(TASKS)} "
                          f"(or a mapping task: weight), got {value!r}")
    g, s, e, a = (_coerce(f"{where}[{i}]", v, "float") for i, v in enumerate(value))
    return g, s, e, a


def _task_list(where: str, value: object) -> tuple[str, ...]:
    """A list of distinct task names (an empty list or nothing: none)."""
    if value is None:
        return ()
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise ConfigError(where=where, problem=f"expected a list of task names, got {value!r}")
    for i, v in enumerate(value):
        if v not in TASKS:
            raise ConfigError(where=f"{where}[{i}]", problem=f"unknown task {v!r}; valid tasks: {', '.join(TASKS)}")
    if len(set(value)) != len(value):
        raise ConfigError(where=where, problem=f"a task is named twice in {list(value)}")
    return tuple(value)


def _per_task(where: str, value: Any, annotation: str) -> dict[str, Any]:
    """A mapping task -> value of one type (an empty mapping or nothing: none)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(where=where, problem=f"expected a mapping task: {annotation}, e.g. {{smile: ...}}, "
                          f"got {type(value).__name__} {value!r}")
    out: dict[str, Any] = {}
    for task, v in value.items():
        if task not in TASKS:
            raise ConfigError(where=f"{where}.{task}", problem=f"unknown task; valid tasks: {', '.join(TASKS)}")
        out[task] = _coerce(f"{where}.{task}", v, annotation)
    return out


def validate(cfg: TrainConfig) -> TrainConfig:
    """Cross-field checks; raises ConfigError with one line naming the key and the fix."""
    def need(ok: bool, msg: str) -> None:
        """Every rule's message is written ``key: problem``: the key becomes the error's ``where``."""
        if not ok:
            where, _, problem = msg.partition(": ")
            raise ConfigError(where=where, problem=problem)

    need(bool(RUN_NAME.match(cfg.name)) and len(cfg.name.encode()) <= MAX_NAME_BYTES,
         f"name: {cfg.name!r} is not a usable run name: it names the run folder, so letters, digits, "
         f"_ . + - only (no /, spaces or shell characters), at most {MAX_NAME_BYTES} bytes")
    need(cfg.model == "MTL_AlexNet_model", f"model: unknown model {cfg.model!r}; valid: MTL_AlexNet_model")
    need(cfg.dataset in DATASETS, f"dataset: unknown dataset {cfg.dataset!r}; valid: {', '.join(DATASETS)}")
    need(all(w >= 0 for w in cfg.loss_weights),
         f"loss_weights: weights must be >= 0, got {list(cfg.loss_weights)}")
    need(any(w > 0 for w in cfg.loss_weights),
         f"loss_weights: all weights are 0; give at least one of {', '.join(TASKS)} a positive weight")
    unlabelled = [t for t, w in zip(TASKS, cfg.loss_weights) if w and t not in DATASETS[cfg.dataset].tasks]
    need(not unlabelled, f"loss_weights: {cfg.dataset} has labels for {' and '.join(DATASETS[cfg.dataset].tasks)} "
                         f"only; set {' and '.join(t for t in TASKS if t not in DATASETS[cfg.dataset].tasks)} "
                         f"weights to 0")
    need(cfg.age_loss_type in AGE_LOSS_TYPES,
         f"age_loss_type: unknown {cfg.age_loss_type!r}; valid: {', '.join(AGE_LOSS_TYPES)}")
    need(cfg.backbone_weights in BACKBONE_CHOICES or cfg.backbone_weights.endswith((".pth", ".pt")),
         f"backbone_weights: {cfg.backbone_weights!r} is neither none, kaiming, imagenet nor a .pth/.pt file path")
    need(not cfg.load_IMDB_WIKI_pretrained_model or bool(cfg.init_checkpoint),
         "load_IMDB_WIKI_pretrained_model: true needs init_checkpoint (the run folder or checkpoint "
         "of an IMDB-WIKI run)")
    need(cfg.lr_scheduler in LR_SCHEDULERS,
         f"lr_scheduler: {cfg.lr_scheduler!r}; valid: {', '.join(LR_SCHEDULERS)}")
    need(cfg.optimizer in OPTIMIZERS, f"optimizer: {cfg.optimizer!r}; valid: {', '.join(OPTIMIZERS)}")
    need(cfg.budget in BUDGETS, f"budget: {cfg.budget!r}; valid: {', '.join(BUDGETS)}")
    need(cfg.total_steps is None or cfg.steps_per_epoch is None,
         "total_steps and steps_per_epoch: give one budget, not both")
    need(cfg.total_steps is None or cfg.epoch <= cfg.total_steps <= 10**9,
         f"total_steps: must be between epoch ({cfg.epoch}) and 1e9, got {cfg.total_steps}")
    for key in ("image_size", "batch_size", "epoch", "lr_schedule", "lr_patience"):
        need(getattr(cfg, key) >= 1, f"{key}: must be >= 1, got {getattr(cfg, key)}")
    need(cfg.image_size >= 63, f"image_size: must be >= 63 (AlexNet's strides and pools), got {cfg.image_size}")
    need(cfg.image_size <= 1024, f"image_size: must be <= 1024, got {cfg.image_size}")
    need(cfg.lr_rate > 0, f"lr_rate: must be > 0, got {cfg.lr_rate}")
    need(cfg.weight_decay >= 0, f"weight_decay: must be >= 0, got {cfg.weight_decay}")
    need(0 <= cfg.momentum < 1, f"momentum: must be in [0, 1), got {cfg.momentum}")
    need(cfg.seed >= 0, f"seed: must be >= 0, got {cfg.seed}")
    for key, top in LIMITS.items():
        need(getattr(cfg, key) <= top, f"{key}: must be <= {top}, got {getattr(cfg, key)}")
    need(cfg.steps_per_epoch is None or cfg.steps_per_epoch >= 1,
         f"steps_per_epoch: must be >= 1 or empty (= smallest task's batches), got {cfg.steps_per_epoch}")
    need(cfg.num_workers >= 0, f"num_workers: must be >= 0, got {cfg.num_workers}")
    need(cfg.checkpoint_every_min > 0, f"checkpoint_every_min: must be > 0, got {cfg.checkpoint_every_min}")
    need(cfg.device in ("auto", "cpu", "cuda") or cfg.device.startswith("cuda:"),
         f"device: {cfg.device!r}; valid: auto, cpu, cuda, cuda:N")
    need(cfg.data_cache in DATA_CACHE_CHOICES,
         f"data_cache: {cfg.data_cache!r}; valid: {', '.join(DATA_CACHE_CHOICES)}")
    need(cfg.amp in AMP_CHOICES, f"amp: {cfg.amp!r}; valid: {', '.join(AMP_CHOICES)}")
    d = cfg.data
    need(d.cache_max_gb >= 0, f"data.cache_max_gb: must be >= 0, got {d.cache_max_gb}")
    need(d.stage_to is None or (bool(d.stage_to.strip()) and d.stage_to.startswith(("/", "~", "$"))
                                and not any(c in d.stage_to for c in "\0\n\r")),
         f"data.stage_to: {d.stage_to!r} is not a folder path: give node-local scratch as an absolute path or "
         f"one that starts with $VAR or ~ (expanded in the job, e.g. $TMPDIR), or leave it empty")
    need(d.chalearn_layout in CHALEARN_LAYOUTS,
         f"data.chalearn_layout: {d.chalearn_layout!r}; valid: {', '.join(CHALEARN_LAYOUTS)}")
    need(d.imdb_wiki_layout in IMDB_WIKI_LAYOUTS,
         f"data.imdb_wiki_layout: {d.imdb_wiki_layout!r}; valid: {', '.join(IMDB_WIKI_LAYOUTS)}")
    need(d.fer2013_eval_split in FER_SPLITS,
         f"data.fer2013_eval_split: {d.fer2013_eval_split!r}; valid: {', '.join(FER_SPLITS)}")
    need(0 < d.holdout_fraction < 1,
         f"data.holdout_fraction: must be in (0, 1), got {d.holdout_fraction}")
    need(0 < d.imdb_wiki_val_fraction < 1,
         f"data.imdb_wiki_val_fraction: must be in (0, 1), got {d.imdb_wiki_val_fraction}")
    need(d.synthetic_train_size >= 1 and d.synthetic_eval_size >= 1,
         "data.synthetic_train_size / synthetic_eval_size: must be >= 1")
    for key, top in DATA_LIMITS.items():
        need(getattr(d, key) <= top, f"data.{key}: must be <= {top}, got {getattr(d, key)}")
    need(len(d.synthetic_shared) != 1, f"data.synthetic_shared: one task shares with nothing; name two or more "
                                       f"(e.g. [gender, smile]) or none, got {list(d.synthetic_shared)}")
    for task, n in d.synthetic_task_sizes.items():
        need(1 <= n <= d.synthetic_train_size, f"data.synthetic_task_sizes.{task}: must be between 1 and "
                                               f"data.synthetic_train_size ({d.synthetic_train_size}), got {n}")
    for task, p in d.synthetic_label_noise.items():
        need(0 <= p < 1, f"data.synthetic_label_noise.{task}: must be in [0, 1), got {p}")
    need(d.synthetic_cues in SYNTHETIC_CUES,
         f"data.synthetic_cues: {d.synthetic_cues!r}; valid: {', '.join(SYNTHETIC_CUES)}")
    return cfg


def train_config_from_dict(raw: Mapping[str, object]) -> TrainConfig:
    """Build and validate a TrainConfig from a mapping (YAML, CLI overrides, a grid row)."""
    return validate(build_checked(TrainConfig, raw, ""))


def parse_override(text: str, flag: str = "--set", example: str = "batch_size=16") -> tuple[list[str], object]:
    """``key=value`` or ``data.root=/x`` -> (path, YAML-parsed value): what ``--set`` (and ``mtl-launch
    --resources``, with its own flag and example for the message) take."""
    if "=" not in text:
        raise ConfigError(f"{flag} {text!r}: expected key=value, e.g. {flag} {example}")
    key, _, value = text.partition("=")
    try:
        parsed = yaml.safe_load(value) if value.strip() else None
    except yaml.YAMLError:
        parsed = value
    return key.strip().split("."), parsed


def set_dotted(target: dict[str, Any], path: Sequence[str], value: object) -> str | None:
    """Set ``target[a][b]... = value`` for the key path ``a.b...``, creating mappings on the way; returns
    the part that is not a mapping when one is in the way (nothing is set then), else None."""
    node = target
    for part in path[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            return part
        node = child
    node[path[-1]] = value
    return None


def nested(flat: Mapping[str, Any]) -> dict[str, Any]:
    """``{"data.root": x}`` -> ``{"data": {"root": x}}``: the inverse of ``flatten``."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        set_dotted(out, str(key).split("."), value)
    return out


def apply_overrides(raw: Mapping[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of ``raw`` with ``key=value`` overrides applied (nested by dots)."""
    out: dict[str, Any] = copy.deepcopy(dict(raw))   # not through JSON: a YAML date must reach the type check
    for text in overrides:
        path, value = parse_override(text)
        blocked = set_dotted(out, path, value)
        if blocked is not None:
            raise ConfigError(f"--set {text!r}: {blocked} is not a mapping")
    return out


def load_train_config(path: Path | None, overrides: list[str] | None = None) -> TrainConfig:
    """The single-run config: a YAML file (or the embedded DEFAULT_RUN) plus ``key=value`` overrides."""
    raw = load_yaml_mapping(path) if path is not None else json.loads(json.dumps(DEFAULT_RUN))
    raw.pop("signature", None)  # a run folder's config.yaml carries its signature; accept it back
    return train_config_from_dict(apply_overrides(raw, overrides or []))

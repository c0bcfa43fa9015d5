"""The run folder contract: the one place that knows its file names.

Written by the training job (the launcher adds nothing here; it keeps jobs/ and logs/); read by
mtl-status, mtl-collect and the launcher.
  config.yaml       resolved config + signature
  status.json       state, attempts, job id, host, times, progress, reason
  data.json         per task: dataset, source path, split names and sizes, class mapping
  metrics.jsonl     one JSON line per epoch and split (train, val, test); deterministic, append-only
  timings.jsonl     wall-clock per epoch and attempt (kept apart so metrics stay byte-identical on resume)
  attempts.jsonl    wall-clock per attempt: its start (and how far the one before got), resume point, GPUs,
                    end; what mtl-collect --cost reads (apart from the byte-identical files, like timings).
                    ``start`` also holds ``env`` (the software and machine it ran on: ENV_FIELDS) and ``slurm``
                    (the job's time limit and memory, null outside Slurm); ``resume`` the data it trained on
                    (``data``: each split's identity, ``data_cache``: its pre-decoded cache key where used);
                    ``end`` what it used (``usage``: USAGE_FIELDS). mtl-collect's drift audit and --cost read them
  predictions.json  per task: the test split's per-image results at the epoch its validation loss chose;
                    under "by_rule": the same at the final epoch ("final") and at the JOINT_RULE epoch ("joint")
  summary.json      budget, per-task selection, final and best-epoch metrics, written once at the end
  log.txt         human log of every attempt
  checkpoints/    the last two checkpoints
  .lock           the trainer's lock (runlock.py): one trainer per folder; hidden, so collectors skip it
  .lock.log       every take and release of that lock (runlock.py): proof that no two trainers held it at once
"""
from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence, TypedDict

import yaml

from .config import TrainConfig, signature
from .fsio import append_line, atomic_write_json, atomic_write_text
from .tasks import folder_sub_name

BEST_RULE = "lowest validation loss (weighted sum of the task losses); ties -> earlier epoch"
SELECT_RULE = ("per task, the epoch of that task's own lowest validation loss (ties -> earlier), in multitask "
               "and single-task runs alike; that epoch's test-split metrics are reported")
JOINT_RULE = ("one epoch per run for all its tasks, so every number of a row comes from one model: the lowest mean "
              "over its tasks of each task's validation loss divided by that task's first-epoch validation loss "
              "(ties -> earlier); that epoch's test-split metrics are reported")
PREDICTIONS_BY_RULE = "by_rule"     # predictions.json: {"by_rule": {"final" | "joint": {task: ...}}}


class Summary(TypedDict, total=False):
    """summary.json, as the trainer writes it at the end of a run (``train/loop.py``). Every key may be missing
    from a file of an older protocol (one from before the test split has no ``selection`` nor ``budget``)."""

    name: str
    signature: str
    protocol: int
    tasks: list[str]
    datasets: dict[str, str]                       # task -> dataset
    splits: dict[str, dict[str, str]]              # task -> role (train, val, test) -> the split's name
    classes: dict[str, dict[str, int]]             # task -> class name -> label, where folders name them
    age_loss_type: str | None
    metrics: list[str]                             # the tasks.METRICS keys the run reports
    budget: dict[str, object]                      # steps per epoch and the rule that set them
    epochs: int
    selection: dict[str, Any]                      # {"rule": SELECT_RULE, "tasks": {task: {epoch, val, test}}}
    best_rule: str
    best_epoch: int
    best: dict[str, dict[str, Any] | None]         # split -> the metrics.jsonl line of that epoch
    final: dict[str, dict[str, Any] | None]
    unreadable_images: dict[str, int]
    skipped_at_load: dict[str, int]
    trainable_params: int


@dataclass(frozen=True)
class EnvField:
    """One field of an attempt's ``env`` (attempts.jsonl ``start``): ``drift`` = the collector's drift audit
    compares it across the runs of a section (host is recorded, not compared: a cluster's nodes differ)."""

    key: str
    label: str              # how mtl-collect's drift warning names it
    drift: bool = True


ENV_FIELDS: tuple[EnvField, ...] = (
    EnvField("python", "Python"),
    EnvField("torch", "torch"),
    EnvField("torchvision", "torchvision"),
    EnvField("cuda", "CUDA"),                   # torch.version.cuda: the CUDA torch was built for (null: CPU build)
    EnvField("cudnn", "cuDNN"),
    EnvField("gpu", "GPU"),                     # the model of the GPU the run trains on (null: on the CPU)
    EnvField("driver", "driver"),               # the NVIDIA driver (NVML or nvidia-smi; null where neither answers)
    EnvField("git_commit", "git commit"),       # the package's commit (null: not a git checkout)
    EnvField("git_diff", "uncommitted diff"),   # sha256 of ``git diff HEAD`` (null: a clean tree)
    EnvField("host", "host", drift=False),
)
ENV_DATA = ("data", "data_cache")   # attempts.jsonl ``resume``: per "split:task", compared split by split
USAGE_FIELDS = ("elapsed_s", "host_peak_mib", "children_peak_mib", "gpu_peak_mib", "gpu_reserved_peak_mib",
                "gpu_util_mean")
"""attempts.jsonl ``end`` ``usage``: the attempt's seconds (monotonic), peak resident memory of the trainer
process and of its children (DataLoader workers, ru_maxrss), peak GPU memory torch allocated / reserved, and
the mean GPU utilisation (%) sampled while it ran; null where not measured (the GPU ones on a CPU)."""


def joint_epoch(val_records: Sequence[Mapping[str, Any]], tasks: Sequence[str]) -> int | None:
    """The epoch JOINT_RULE picks from a run's validation records (metrics.jsonl's ``val`` lines, one per epoch):
    dividing by the first epoch's loss puts 100-class age and 2-class gender on one scale. None without records."""
    recs = sorted((r for r in val_records if all(isinstance(r.get(f"{t}_loss"), (int, float)) for t in tasks)),
                  key=lambda r: r["epoch"])
    if not recs or not tasks:
        return None
    first = recs[0]

    def score(r: Mapping[str, Any]) -> float:
        return sum(float(r[f"{t}_loss"]) / max(float(first[f"{t}_loss"]), 1e-12) for t in tasks) / len(tasks)

    return int(min(recs, key=lambda r: (score(r), r["epoch"]))["epoch"])


def default_run_dir(results: Path, cfg: TrainConfig) -> Path:
    """``results/<model>/<seed folder tag>_<dataset>/<name>_seed<seed>_<signature>``: readable and unique."""
    group = f"{folder_sub_name(cfg.loss_weights)}_{cfg.dataset}"
    return Path(results) / cfg.model / group / f"{cfg.name}_seed{cfg.seed}_{signature(cfg)}"


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def read_json(path: Path) -> Any:
    """Parse a JSON file; raises OSError/ValueError for the caller to report."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every complete JSON line of an append-only file (a torn last line is ignored)."""
    out: list[dict[str, Any]] = []
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return out
    for line in text.splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out


def count_field(status: Mapping[str, object], key: str) -> int | None:
    """An int field of status.json, or None when a hand-edited or damaged file holds something else."""
    value = status.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class RunDir:
    """Paths and small readers/writers of one run folder."""

    path: Path

    @property
    def config_file(self) -> Path:
        return self.path / "config.yaml"

    @property
    def status_file(self) -> Path:
        return self.path / "status.json"

    @property
    def data_file(self) -> Path:
        return self.path / "data.json"

    @property
    def metrics_file(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def timings_file(self) -> Path:
        return self.path / "timings.jsonl"

    @property
    def attempts_file(self) -> Path:
        return self.path / "attempts.jsonl"

    @property
    def summary_file(self) -> Path:
        return self.path / "summary.json"

    @property
    def predictions_file(self) -> Path:
        return self.path / "predictions.json"

    @property
    def log_file(self) -> Path:
        return self.path / "log.txt"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    def write_config(self, cfg: TrainConfig) -> None:
        d = {"signature": signature(cfg), **cfg.to_dict()}
        atomic_write_text(self.config_file, yaml.safe_dump(d, sort_keys=False))

    def read_signature(self) -> str | None:
        """The signature recorded in config.yaml, or None when there is no readable one."""
        try:
            cfg = yaml.safe_load(self.config_file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            return None
        sig = cfg.get("signature") if isinstance(cfg, dict) else None
        return str(sig) if sig else None

    def read_status(self) -> dict[str, object]:
        try:
            status = read_json(self.status_file)
        except (OSError, ValueError):
            return {}
        return status if isinstance(status, dict) else {}

    def update_status(self, **fields: object) -> dict[str, object]:
        """Merge ``fields`` into status.json (atomically) with host, pid, job id and time."""
        status = self.read_status()
        status.update(fields)
        status.update(host=socket.gethostname(), pid=os.getpid(), updated_at=now_iso())
        job = slurm_job_id()
        if job:
            status["job_id"] = job
        atomic_write_json(self.status_file, status)
        return status

    def append_metrics(self, record: Mapping[str, object]) -> None:
        append_line(self.metrics_file, json.dumps(record, sort_keys=True))

    def rewrite_metrics(self, records: Sequence[Mapping[str, object]]) -> None:
        atomic_write_text(self.metrics_file, "".join(json.dumps(r, sort_keys=True) + "\n" for r in records))

    def append_timing(self, record: Mapping[str, object]) -> None:
        append_line(self.timings_file, json.dumps(record, sort_keys=True))

    def append_attempt(self, event: str, attempt: int, **fields: object) -> None:
        """One attempts.jsonl line: ``start`` (with ``previous``: the epoch/step/state/updated_at status.json
        held, i.e. how far the attempt before got; ``job_id`` in Slurm, for sacct), ``resume`` (``epoch``,
        ``step``, ``steps_per_epoch``, ``gpus``) or ``end`` (``epoch``, ``step`` reached); ``at`` is the wall
        clock (epoch seconds)."""
        record = {"event": event, "attempt": attempt, "at": round(time.time(), 3), **fields}
        append_line(self.attempts_file, json.dumps(record, sort_keys=True))


def slurm_job_id() -> str | None:
    """``<array job>_<task>`` inside an array, the job id otherwise, None outside SLURM."""
    array, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    if array and task:
        return f"{array}_{task}"
    return os.environ.get("SLURM_JOB_ID")

"""One training run, top to bottom: set up, resume, train_one_epoch / evaluate, checkpoint, summarise.

Every step draws one batch from each active task and sums the weighted task losses. All state that
decides the numbers (weights, optimiser, scheduler, partial-epoch sums, history) is checkpointed, and
all randomness is derived from (seed, epoch, step), so a run resumed anywhere ends identical.
"""
from __future__ import annotations

import contextlib
import dataclasses
import errno
import logging
import math
import shutil
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence, TypedDict, TypeVar

import torch
from torch.utils.data import DataLoader, Sampler

from ..config import PROTOCOL, TrainConfig, signature
from ..errors import (
    CheckpointError,
    ConfigError,
    DataError,
    Interrupted,
    LossNotFinite,
    MtlError,
    Stalled,
    TrainingFailed,
)
from ..fsio import atomic_write_json
from ..rundir import (
    BEST_RULE,
    PREDICTIONS_BY_RULE,
    SELECT_RULE,
    RunDir,
    Summary,
    count_field,
    joint_epoch,
    now_iso,
    read_json,
    read_jsonl,
    slurm_job_id,
)
from ..runlock import RunLock, lock_run_folder
from ..signals import StopRequest, pending, stop_signals
from ..states import Cause, State
from ..tasks import AGE_HEADS, METRICS, SPLITS, TASKS, run_metrics
from .checkpoint import CheckpointWriter, clear_partial, list_checkpoints, load_init, load_latest, try_read
from .data import load_tasks, train_sizes
from .data.base import ImageSet, TaskData
from .data.cache import Decoded, open_cache
from .data.stage import stage_cache, stage_root
from .data.transforms import CachedView, TaskView, augment_batch, whole_batch
from .environment import GpuSampler, environment, reset_peak_memory, slurm_limits, usage
from .guard import newest_checkpoint, stalled
from .metrics import TaskMeter, epoch_record, task_loss
from .model import MTL_AlexNet_model, load_backbone, load_init_state
from .perf import cache_decision, cache_folder, resolve
from .sampling import EpochBatches, InOrder, default_steps, mix
from .schedule import PER_STEP, PLATEAU_THRESHOLD, lr_factor
from .tboard import EventLog

log = logging.getLogger("mtl_cluster.train")

FILE_ONLY = {"file_only": True}  # the CLI prints the error line itself; don't say it twice on the console
PROGRESS_EVERY_S = 10.0          # status.json gets the current step this often (mtl-status, fault tests)
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


class ProgressInfo(TypedDict, total=False):
    """What a ``Progress`` callback is told, per event: ``cache`` (task, split, done, total: images decoded into
    the cache), ``step`` (epoch, step, steps, lr: after each training step), ``epoch`` (epoch, epochs, train, val:
    the epoch's metrics.jsonl lines)."""

    task: str
    split: str
    done: int
    total: int
    epoch: int
    step: int
    steps: int
    lr: float
    epochs: int
    train: dict[str, Any]
    val: dict[str, Any]


Progress = Callable[[str, ProgressInfo], None]
Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]   # images, labels, sample indices


def pick_device(spec: str) -> torch.device:
    """``auto`` -> CUDA when it really works, else CPU; an explicit cuda without CUDA falls back too."""
    if spec != "cpu" and torch.cuda.is_available():
        return torch.device("cuda" if spec == "auto" else spec)
    if spec.startswith("cuda"):
        log.warning("device %s requested but CUDA is not available here: using the CPU", spec)
    return torch.device("cpu")


@dataclass
class RunState:
    """Everything a checkpoint restores beyond the model/optimiser/scheduler state_dicts."""

    epoch: int = 0                     # 0-based epoch being trained
    step: int = 0                      # next step to run in that epoch
    meters: dict[str, dict[str, float]] = field(default_factory=dict)  # partial train sums
    history: list[dict[str, Any]] = field(default_factory=list)        # metrics.jsonl lines so far
    unreadable: dict[str, list[int]] = field(default_factory=dict)     # task -> sorted sample ids
    best_epoch: int = 0
    best_loss: float = math.inf
    selected: dict[str, dict[str, Any]] = field(default_factory=dict)  # task -> {epoch, loss} (its own val loss)
    predictions: dict[str, dict[str, Any]] = field(default_factory=dict)  # task -> test predictions at that epoch


class Trainer:
    """Holds the pieces of one run; ``run()`` trains to the end or raises an MtlError."""

    def __init__(self, cfg: TrainConfig, run_dir: Path, progress: Progress | None = None):
        self.cfg = cfg
        self.rd = RunDir(Path(run_dir))
        self.sig = signature(cfg)
        self.progress = progress or (lambda _e, _i: None)
        self.weights = {t: cfg.loss_weights[TASKS.index(t)] for t in cfg.active_tasks}
        self.age_heads = AGE_HEADS[cfg.age_loss_type]
        self.state = RunState()
        self.save_seconds = 0.0            # time training waited for checkpoints this epoch

    # -- set-up -------------------------------------------------------------------------------
    def _check_folder(self) -> None:
        old = self.rd.read_signature()
        if old and old != self.sig:
            raise CheckpointError(
                f"{self.rd.path} holds a run of config signature {old}, not {self.sig}; "
                f"give a new --run-dir for a changed config")
        self.rd.write_config(self.cfg)

    def _build(self) -> None:
        cfg = self.cfg
        self.device = pick_device(cfg.device)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
        self.data: dict[str, TaskData] = load_tasks(cfg)
        for t, d in self.data.items():
            log.info("task %s: %s %s, %d train / %d val (%s) / %d test (%s) images%s", t, d.dataset, d.source,
                     len(d.train), len(d.val), d.val_split, len(d.test), d.test_split,
                     f", {d.skipped_at_load} skipped at load" if d.skipped_at_load else "")
        atomic_write_json(self.rd.data_file, {t: {
            "dataset": d.dataset, "source": d.source, "classes": d.classes, "skipped_at_load": d.skipped_at_load,
            "splits": self._splits(t), "sizes": {sp: len(getattr(d, sp)) for sp in SPLITS},
        } for t, d in self.data.items()})
        self.data_ids = {f"{split}:{t}": getattr(d, split).identity() for t, d in self.data.items()
                         for split in SPLITS}
        self.perf = resolve(cfg, self.device)
        log.info("perf: %s", ", ".join(f"{k} {v}" for k, v in self.perf.notes.items()))
        self.decoded = self._open_caches()
        torch.manual_seed(cfg.seed)
        self.model = MTL_AlexNet_model(tuple(self.weights), cfg.age_loss_type).to(self.device)
        if self.perf.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.trunk = torch.compile(self.model.trunk) if self.perf.compile else self.model.trunk
        self.rd.update_status(perf=self.perf.notes)
        self.writer = CheckpointWriter(self.rd.checkpoints)
        fused = True if self.perf.fused else None     # None: torch's own choice (a loop on other devices)
        self.opt = (torch.optim.Adam(self.model.parameters(), lr=cfg.lr_rate, weight_decay=cfg.weight_decay,
                                     fused=fused)
                    if cfg.optimizer == "adam" else
                    torch.optim.SGD(self.model.parameters(), lr=cfg.lr_rate, momentum=cfg.momentum,
                                    weight_decay=cfg.weight_decay, fused=fused))
        self.sched: Any = (
            torch.optim.lr_scheduler.ReduceLROnPlateau(self.opt, factor=0.1, patience=cfg.lr_patience,
                                                       threshold=PLATEAU_THRESHOLD)
            if cfg.lr_scheduler == "plateau" else
            None if cfg.lr_scheduler in PER_STEP else      # set at every step from the step count (_set_lr)
            torch.optim.lr_scheduler.StepLR(self.opt, step_size=cfg.lr_schedule, gamma=0.1))
        self.steps, self.budget = self._budget()
        log.info("budget: %d steps per epoch (%s)", self.steps, self.budget["rule"])

    def _splits(self, task: str) -> dict[str, str]:
        """Each split's role and name: train, val (selects epochs), test (reported)."""
        d = self.data[task]
        return {"train": "train", "val": d.val_split, "test": d.test_split}

    def _budget(self) -> tuple[int, dict[str, object]]:
        """Steps per epoch and why: the same for every row of a section, whatever tasks it trains."""
        cfg = self.cfg
        if cfg.steps_per_epoch:
            return cfg.steps_per_epoch, {"rule": "steps_per_epoch (given)"}
        if cfg.total_steps:
            rule = f"total_steps {cfg.total_steps} / {cfg.epoch} epochs"
            return math.ceil(cfg.total_steps / cfg.epoch), {"rule": rule}
        sizes: dict[str, int | None] = {t: len(d.train) for t, d in self.data.items()}
        if cfg.budget == "dataset":
            sizes = {**train_sizes(cfg), **sizes}
            missing = sorted(t for t, n in sizes.items() if n is None)
            if missing:
                log.warning("budget: no training data found for %s (inactive here); the epoch is set by the "
                            "tasks that were found, so rows with that data may train longer", ", ".join(missing))
        known = {t: n for t, n in sizes.items() if n}
        by = min(known, key=lambda t: (known[t], TASKS.index(t)))
        rule = (f"budget {cfg.budget}: the {by} training set ({known[by]} images) / batch {cfg.batch_size}, the "
                f"smallest of {', '.join(sorted(known, key=TASKS.index))}")
        return default_steps([known[by]], cfg.batch_size), {"rule": rule, "train_sizes": sizes, "set_by": by}

    def _open_caches(self) -> dict[str, Decoded]:
        """Each split that goes through the pre-decoded cache (decided per split), built if missing."""
        out: dict[str, Decoded] = {}
        stage = stage_root(self.cfg.data.stage_to) if self.cfg.data.stage_to else None
        if stage is not None and self.cfg.data_cache == "off":
            log.warning("data.stage_to: nothing is staged with data_cache: off (staging copies the pre-decoded "
                        "cache); images are read from %s", self.cfg.data.root)
        for t, d in self.data.items():
            for split in SPLITS:
                images = getattr(d, split)
                use, why = cache_decision(self.cfg, images)
                if use:
                    def report(done: int, total: int, t: str = t, split: str = split) -> None:
                        self.progress("cache", {"task": t, "split": split, "done": done, "total": total})
                    try:
                        dec = self._open_cache(images, report, stage, f"{split}:{t}")
                    except OSError as exc:   # a read-only data root, a full disk
                        if self.cfg.data_cache == "on":
                            raise DataError(f"data_cache: on, but the image cache in {cache_folder(self.cfg)} "
                                            f"cannot be written ({exc.strerror or exc}); set data.cache_dir "
                                            f"to a writable folder or data_cache: auto") from None
                        why = f"off (auto: cannot write {cache_folder(self.cfg)}: {exc.strerror or exc})"
                    else:
                        out[f"{split}:{t}"] = dec
                        why += f", {'built' if dec.built else 'reused'} {dec.key}" if dec.key != "in-memory" else ""
                self.perf.notes[f"cache {split}:{t}"] = why
                log.info("image cache %s:%s: %s", split, t, why)
        return out

    def _open_cache(self, images: ImageSet, report: Callable[[int, int], None], stage: Path | None,
                    name: str) -> Decoded:
        """The split's cache: copied to node-local ``stage`` first when data.stage_to is set (a failed copy
        is a warning: the run reads the shared cache instead), else read or built in data.cache_dir."""
        threads = max(1, self.cfg.num_workers)
        if stage is not None:
            try:
                staged = stage_cache(images, self.cfg.image_size, cache_folder(self.cfg), stage, report, threads)
            except OSError as exc:
                log.warning("image cache %s: not staged to %s (%s); reading the shared cache", name, stage,
                            exc.strerror or exc)
            else:
                log.info("image cache %s: %s", name, staged.note)
                self.perf.notes[f"stage {name}"] = staged.note
                return staged.decoded
        return open_cache(images, self.cfg.image_size, cache_folder(self.cfg), report, threads=threads)

    def _resume_or_init(self) -> None:
        for name in clear_partial(self.rd.checkpoints):
            log.warning("removed %s: a checkpoint write that did not finish (the process was killed)", name)
        found = load_latest(self.rd.checkpoints, self.sig)
        if found is None:
            load_backbone(self.model, self.cfg.backbone_weights)
            if self.cfg.init_checkpoint:
                heads = load_init_state(self.model, load_init(Path(self.cfg.init_checkpoint)))
                log.info("initialised trunk and heads %s from %s", heads or "none", self.cfg.init_checkpoint)
            if self.rd.metrics_file.exists():
                self.rd.rewrite_metrics([])
            return
        ckpt, path = found
        changed = sorted(k for k, v in ckpt.get("data", {}).items() if self.data_ids.get(k, v) != v)
        if changed:
            raise CheckpointError(f"{path}: this run was trained on other data ({', '.join(changed)} changed: "
                                  f"images added, removed, renamed or relabelled); restore that data or use a "
                                  f"new --run-dir")
        self.model.load_state_dict(ckpt["model"])
        self.opt.load_state_dict(ckpt["optimizer"])
        if self.sched is not None:
            self.sched.load_state_dict(ckpt["scheduler"])
        self.state = RunState(**ckpt["run"])
        if read_jsonl(self.rd.metrics_file) != self.state.history:
            self.rd.rewrite_metrics(self.state.history)   # drop lines of an epoch the checkpoint did not see
        log.info("resumed from %s (epoch %d, step %d/%d)", path.name, self.state.epoch + 1, self.state.step,
                 self.steps)

    def _save(self) -> None:
        """Checkpoint now; the write itself runs in the background (``CheckpointWriter``)."""
        s = self.state
        self.save_seconds += self.writer.save({
            "signature": self.sig, "epoch": s.epoch, "step": s.step, "data": self.data_ids,
            "model": self.model.state_dict(), "optimizer": self.opt.state_dict(),
            "scheduler": self.sched.state_dict() if self.sched is not None else {},
            "run": dataclasses.asdict(s),
        })

    # -- the loop -----------------------------------------------------------------------------
    def _loader(self, task: str, sampler: Sampler[list[tuple[int, int]]], split: str) -> DataLoader:
        images = getattr(self.data[task], split)
        dec = self.decoded.get(f"{split}:{task}")
        if dec is None:
            return DataLoader(TaskView(images, self.cfg.image_size), batch_sampler=sampler,
                              num_workers=self.cfg.num_workers, pin_memory=self.perf.pin_memory)
        view = CachedView(dec.pixels, dec.ok, images.labels, augment_here=self.device.type == "cpu")
        return DataLoader(view, batch_sampler=sampler, collate_fn=whole_batch, num_workers=self.cfg.num_workers,
                          pin_memory=self.perf.pin_memory)

    def _keep_readable(self, task: str, split: str, batch: Sequence[torch.Tensor]) -> Batch | None:
        """Drop unreadable samples from a batch, logging and counting each file once per split."""
        x, y, ok, idx = batch[:4]
        seeds = batch[4] if len(batch) > 4 else None
        if not bool(ok.all()):
            images = getattr(self.data[task], split)
            bad = self.state.unreadable.setdefault(f"{split}:{task}", [])
            for i in idx[~ok].tolist():
                if i not in bad:
                    bad.append(i)
                    log.warning("unreadable %s image skipped: %s", task, images.describe(i))
            bad.sort()
            if not bool(ok.any()):
                return None
            x, y, idx = x[ok], y[ok], idx[ok]
            seeds = seeds[ok] if seeds is not None else None
        x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
        if x.dtype == torch.uint8:   # a cached batch for the GPU: augmented there
            assert seeds is not None, "a cached batch carries its augmentation seeds"
            x = augment_batch(x, seeds.tolist())
        return self.perf.layout(x), y, idx

    def train_one_epoch(self, stop: StopRequest) -> dict[str, TaskMeter]:
        cfg, s = self.cfg, self.state
        meters = {t: TaskMeter(t, s.meters.get(t)) for t in self.weights}
        iters = {t: iter(self._loader(t, EpochBatches(len(self.data[t].train), cfg.batch_size,
                                                      mix(cfg.seed, s.epoch, TASKS.index(t)), self.steps,
                                                      s.step), "train"))
                 for t in self.weights}
        self.model.train()
        last_save = last_progress = started = time.monotonic()
        first = s.step
        for step in range(s.step, self.steps):
            torch.manual_seed(mix(cfg.seed, s.epoch, step, 7))  # dropout: same masks however we got here
            self._set_lr(s.epoch * self.steps + step)
            drawn = {t: self._keep_readable(t, "train", next(iters[t])) for t in self.weights}
            batches = {t: b for t, b in drawn.items() if b is not None}
            if batches:
                xs = [x for x, _, _ in batches.values()]
                with self.perf.autocast(self.device):
                    feats = self.trunk(xs[0] if len(xs) == 1 else torch.cat(xs))
                    losses, outs, start = {}, {}, 0
                    for t, (x, y, _) in batches.items():
                        outs[t] = self.model.heads[t](feats[start:start + len(x)])
                        start += len(x)
                        losses[t] = task_loss(t, outs[t], y)
                    total = torch.stack([self.weights[t] * losses[t] for t in losses]).sum()
                if not torch.isfinite(total):
                    self.writer.wait()   # a checkpoint still being written is kept too: name it
                    kept = list_checkpoints(self.rd.checkpoints)
                    raise LossNotFinite(f"loss is {float(total.detach())} at epoch {s.epoch + 1} step {step + 1} "
                                         f"(task losses {({t: float(v.detach()) for t, v in losses.items()})}); "
                                         f"lower lr_rate or check the data; "
                                         + (f"last good checkpoint {kept[-1].name} kept" if kept else
                                            "no checkpoint was written yet"))
                self.opt.zero_grad(set_to_none=True)
                total.backward()
                self.opt.step()
                for t, (_, y, _) in batches.items():
                    meters[t].update(outs[t], y, losses[t])
            s.step = step + 1
            s.meters = {t: m.state() for t, m in meters.items()}
            self.progress("step", {"epoch": s.epoch + 1, "step": s.step, "steps": self.steps,
                                   "lr": self.opt.param_groups[0]["lr"]})
            if s.step == first + 1 or time.monotonic() - last_progress >= PROGRESS_EVERY_S:
                # the first step of each epoch too: a short run's ETA from its measured step time (mtl-status)
                self.rd.update_status(epoch=s.epoch, step=s.step, steps=self.steps,
                                      step_seconds=round((time.monotonic() - started) / (s.step - first), 4))
                last_progress = time.monotonic()
            due = time.monotonic() - last_save >= cfg.checkpoint_every_min * 60
            if (stop.signum or due) and s.step < self.steps:
                self._save()
                last_save = time.monotonic()
                if stop.signum:
                    self.writer.wait()
                    raise Interrupted(f"{stop.name} received: checkpointed at epoch {s.epoch + 1} "
                                      f"step {s.step}/{self.steps}; start again to resume")
        return meters

    def _set_lr(self, global_step: int) -> None:
        """A per-step schedule (``cosine``): the rate of this step from the step count and the budget alone,
        the same in every row of a section and after any resume (nothing of it is checkpointed)."""
        if self.cfg.lr_scheduler in PER_STEP:
            lr = self.cfg.lr_rate * lr_factor(self.cfg.lr_scheduler, global_step, self.steps * self.cfg.epoch)
            for group in self.opt.param_groups:
                group["lr"] = lr

    @torch.no_grad()
    def evaluate(self, split: str) -> dict[str, TaskMeter]:
        """Each task's whole ``split`` (val or test), in order, deterministic transforms; the test split
        keeps per-image results for the collector's paired tests."""
        self.model.eval()
        meters = {t: TaskMeter(t, keep=split == "test") for t in self.weights}
        bs = max(self.cfg.batch_size, 32)
        for t in self.weights:
            for batch in self._loader(t, InOrder(len(getattr(self.data[t], split)), bs), split):
                kept = self._keep_readable(t, split, batch)
                if kept is None:
                    continue
                x, y, idx = kept
                with self.perf.autocast(self.device):
                    out = self.model.heads[t](self.trunk(x))
                    loss = task_loss(t, out, y)
                sigma = getattr(self.data[t], split).sigma
                meters[t].update(out, y, loss, idx, None if sigma is None else torch.from_numpy(sigma[idx.numpy()]))
        return meters

    def _select(self, val: dict[str, Any], test: dict[str, TaskMeter]) -> None:
        """Per task: keep the epoch of its lowest validation loss, and that epoch's test predictions; and the
        final epoch's and the joint rule's (``rundir.JOINT_RULE``) for the collector's other --select rules."""
        s = self.state
        here = {t: {"epoch": s.epoch + 1, "split": self.data[t].test_split, **test[t].predictions()}
                for t in self.weights}
        for t in self.weights:
            loss = val[f"{t}_loss"]
            if t not in s.selected or loss < s.selected[t]["loss"]:
                s.selected[t] = {"epoch": s.epoch + 1, "loss": loss}
                s.predictions[t] = here[t]
        # the other rules' epochs (mtl-collect --select last / joint): the final epoch's, the joint rule's
        by_rule = s.predictions.setdefault(PREDICTIONS_BY_RULE, {})
        by_rule["final"] = here
        vals = [r for r in s.history if r["split"] == "val"]
        if joint_epoch(vals, list(self.weights)) == s.epoch + 1:
            by_rule["joint"] = here
        atomic_write_json(self.rd.predictions_file, s.predictions)

    def _end_epoch(self, train: dict[str, TaskMeter], val: dict[str, TaskMeter], test: dict[str, TaskMeter],
                   seconds: float) -> None:
        s = self.state
        lr = self.opt.param_groups[0]["lr"]
        recs = [epoch_record(s.epoch + 1, split, m, self.weights, lr, self.age_heads)
                for split, m in (("train", train), ("val", val), ("test", test))]
        for rec in recs:
            s.history.append(rec)
            self.rd.append_metrics(rec)
        n_img = sum(recs[0].get(f"{t}_n", 0) for t in self.weights)   # training images this epoch
        self.events.epoch(recs, {"lr": lr, "train_images_per_s": n_img / max(seconds, 1e-9)})   # before the save
        if recs[1]["loss"] < s.best_loss:
            s.best_epoch, s.best_loss = s.epoch + 1, recs[1]["loss"]
        self._select(recs[1], test)
        if isinstance(self.sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
            self.sched.step(recs[1]["loss"])
        elif self.sched is not None:
            self.sched.step()
        s.epoch, s.step, s.meters = s.epoch + 1, 0, {}
        self._save()
        self.rd.append_timing({"epoch": s.epoch, "attempt": self.attempt, "seconds": round(seconds, 3),
                               "at": round(time.time(), 3),
                               "train_images_per_s": round(n_img / max(seconds, 1e-9), 2),
                               "checkpoint_s": round(self.save_seconds, 4)})
        self.save_seconds = 0.0
        self.progress("epoch", {"epoch": s.epoch, "epochs": self.cfg.epoch, "train": recs[0], "val": recs[1]})
        log.info("epoch %d/%d %s", s.epoch, self.cfg.epoch, _brief(recs[1]))
        self.rd.update_status(epoch=s.epoch, step=0)

    def _summary(self) -> Summary:
        s = self.state
        by = {(r["epoch"], r["split"]): r for r in s.history}
        final = s.epoch
        images = {t: sum(r.get(f"{t}_n", 0) for r in s.history if r["split"] == "train") for t in self.weights}
        return {
            "name": self.cfg.name, "signature": self.sig, "protocol": PROTOCOL, "tasks": list(self.weights),
            "datasets": {t: d.dataset for t, d in self.data.items()},
            "splits": {t: self._splits(t) for t in self.weights},
            "classes": {t: d.classes for t, d in self.data.items() if d.classes},
            "age_loss_type": self.cfg.age_loss_type if "age" in self.weights else None,
            "metrics": [m.key for m in METRICS if m in run_metrics(tuple(self.weights), self.cfg.age_loss_type)
                        or (m.optional and m.key in (by.get((final, "test")) or {}))],
            "budget": {**self.budget, "steps_per_epoch": self.steps, "epochs": final, "steps": self.steps * final,
                       "batch_size": self.cfg.batch_size, "images": images},
            "epochs": final,
            "selection": {"rule": SELECT_RULE, "tasks": {
                t: {"epoch": sel["epoch"], **{sp: _task_part(by.get((sel["epoch"], sp)), t) for sp in ("val", "test")}}
                for t, sel in s.selected.items()}},
            "best_rule": BEST_RULE, "best_epoch": s.best_epoch,
            "best": {sp: by.get((s.best_epoch, sp)) for sp in SPLITS},
            "final": {sp: by.get((final, sp)) for sp in SPLITS},
            "unreadable_images": {t: sum(len(s.unreadable.get(f"{sp}:{t}", [])) for sp in SPLITS)
                                  for t in self.weights},
            "skipped_at_load": {t: d.skipped_at_load for t, d in self.data.items()},
            "trainable_params": sum(p.numel() for p in self.model.parameters() if p.requires_grad),
        }

    def run(self, handle_signals: bool = True, lock_wait_s: float | None = None,
            lock: RunLock | None = None) -> Summary:
        """Train (or resume) to the last epoch; returns the summary. Raises MtlError subclasses.

        The run's life: lock the folder before anything is written in it (``lock``: taken already by the
        caller, e.g. the CLI before it loads torch; else taken here, waiting ``lock_wait_s`` for another
        trainer to leave, see ``lock_run_folder``), check it, start the attempt, build and resume, the
        epochs, the summary; ``_finish_as`` is the one place that decides the state status.json ends in.
        The lock is released however the run ends.
        """
        with lock if lock is not None else lock_run_folder(self.rd.path, lock_wait_s):
            return self._run(handle_signals)

    def _run(self, handle_signals: bool) -> Summary:
        self._check_folder()
        status = self.rd.read_status()
        if status.get("state") == State.COMPLETED and self.rd.summary_file.exists():
            final = list_checkpoints(self.rd.checkpoints)[-1:]
            why = try_read(final[0])[1] if final else None
            if why is None:
                log.info("%s already completed; nothing to do", self.rd.path)
                return read_json(self.rd.summary_file)
            log.warning("%s completed, but its final checkpoint %s is damaged (%s); training its last steps again "
                        "from the previous checkpoint, so that fine-tunes start from its final weights",
                        self.rd.path, final[0].name, why)
        early = pending()
        if early is not None:   # signalled while starting up: this attempt never began, status stays as it was
            raise Interrupted(f"{early.name} received before training began; start again to resume")
        self.attempt = (count_field(status, "attempts") or 0) + 1
        start_from = newest_checkpoint(self.rd.checkpoints)
        stuck = stalled(read_jsonl(self.rd.attempts_file), start_from,   # the attempts before this one
                        retry=status.get("state") == State.FAILED)
        self.attempt_t0 = time.monotonic()
        self.peak_reset = reset_peak_memory()   # this attempt's peak, not an earlier run's (mtl-train --worker)
        with _file_log(self.rd.log_file):
            try:
                self.rd.update_status(state=State.RUNNING, attempts=self.attempt, reason=None, cause=None,
                                      epochs=self.cfg.epoch, signature=self.sig,
                                      started_at=status.get("started_at") or now_iso(), attempt_started_at=now_iso())
                self.rd.append_attempt("start", self.attempt, previous=_progress(status), checkpoint=start_from,
                                       **({"job_id": job} if (job := slurm_job_id()) else {}),
                                       env=_safely("environment", lambda: environment(self.cfg.device)),
                                       slurm=_safely("Slurm limits", slurm_limits))
                if stuck is not None:
                    raise Stalled(stuck)
                log.info("attempt %d of run %s (%s) in %s", self.attempt, self.cfg.name, self.sig, self.rd.path)
                with stop_signals(handle_signals) as stop:
                    self._build()
                    self._resume_or_init()
                    self.events = EventLog(self.rd.path, next_epoch=self.state.epoch + 1)
                    self.rd.append_attempt("resume", self.attempt, epoch=self.state.epoch, step=self.state.step,
                                           steps_per_epoch=self.steps, gpus=_gpus(self.device),
                                           data=self.data_ids, data_cache={
                                               name: dec.key for name, dec in self.decoded.items()
                                               if dec.key != "in-memory"})
                    self.sampler = GpuSampler(self.cfg.device)
                    self.rd.update_status(epoch=self.state.epoch, step=self.state.step, device=str(self.device))
                    self._epochs(stop)
                    self.writer.wait()
                    summary = self._summary()
                    atomic_write_json(self.rd.summary_file, summary)
                self.rd.update_status(state=State.COMPLETED, finished_at=now_iso())
                log.info("completed: %s", _brief(summary["final"]["test"] or {}))
                return summary
            except BaseException as exc:  # noqa: BLE001 - every ending is recorded, then re-raised
                raise self._finish_as(exc)  # noqa: B904 - exc itself, or its one-line translation
            finally:
                self._join_writer()
                if hasattr(self, "events"):
                    self.events.close()
                self._record_end()

    def _epochs(self, stop: StopRequest) -> None:
        """Train, evaluate on val and test, record, checkpoint: epoch by epoch to the last one."""
        while self.state.epoch < self.cfg.epoch:
            t0, self.save_seconds = time.monotonic(), 0.0
            train = self.train_one_epoch(stop)
            val, test = self.evaluate("val"), self.evaluate("test")
            self._end_epoch(train, val, test, time.monotonic() - t0)
            if stop.signum and self.state.epoch < self.cfg.epoch:
                self.writer.wait()
                raise Interrupted(f"{stop.name} received: checkpointed at the end of epoch "
                                  f"{self.state.epoch}; start again to resume")

    def _finish_as(self, exc: BaseException) -> BaseException:
        """Record how the attempt ended in status.json (interrupted, failed) and return what to raise."""
        if isinstance(exc, Interrupted):
            self.rd.update_status(state=State.INTERRUPTED, reason=str(exc), epoch=self.state.epoch,
                                  step=self.state.step)
            log.warning("%s", exc, extra=FILE_ONLY)
            return exc
        if isinstance(exc, KeyboardInterrupt):   # Ctrl-C: the last checkpoint stands, the next start resumes
            self.rd.update_status(state=State.INTERRUPTED, reason="interrupted by Ctrl-C; start again to resume",
                                  epoch=self.state.epoch, step=self.state.step)
            log.warning("interrupted by Ctrl-C", extra=FILE_ONLY)
            return exc
        if isinstance(exc, MtlError):
            self.rd.update_status(state=State.FAILED, reason=str(exc), cause=_cause(exc))
            log.error("%s", exc, extra=FILE_ONLY)
            return exc
        if isinstance(exc, OSError) and exc.errno in DISK_FULL:
            failed = TrainingFailed(self._disk_full(exc))
            self._record_failure(str(failed), Cause.DISK_FULL)
            failed.__cause__, failed.__suppress_context__ = None, True
            return failed
        return self._crashed(exc)

    def _record_failure(self, reason: str, cause: Cause) -> None:
        """status.json says failed and why, even on a full disk (a status file is tiny next to a checkpoint)."""
        try:
            self.rd.update_status(state=State.FAILED, reason=reason, cause=cause)
        except OSError as exc:
            log.error("could not record the failure in status.json: %s", exc)
        log.error("%s", reason, extra=FILE_ONLY)

    def _crashed(self, exc: BaseException) -> BaseException:
        """A bug or an unexpected error: recorded with its stack in log.txt, then re-raised as is."""
        self._record_failure(f"{type(exc).__name__}: {exc}", Cause.EXCEPTION)
        try:
            with open(self.rd.log_file, "a", encoding="utf-8") as f:
                f.write(traceback.format_exc())
        except OSError:
            pass
        return exc

    def _disk_full(self, exc: OSError) -> str:
        where = Path(exc.filename).parent if exc.filename else self.rd.path
        try:
            free = f"{shutil.disk_usage(self.rd.path).free / 2**20:.0f} MB free"
        except OSError:
            free = "free space unknown"
        kept = [p.name for p in list_checkpoints(self.rd.checkpoints)]
        return (f"disk full writing to {where} ({free}) at epoch {self.state.epoch + 1} step {self.state.step}; "
                f"{'checkpoint ' + kept[-1] + ' is intact' if kept else 'no checkpoint was written yet'}: "
                f"free space, then launch again (mtl-launch --retry-failed) to resume")

    def _record_end(self) -> None:
        """attempts.jsonl: where this attempt got and when it ended (mtl-collect --cost: its wall time, and the
        epochs the next attempt trains again when its checkpoint is older than this point)."""
        sampler: GpuSampler | None = getattr(self, "sampler", None)
        util = _safely("GPU utilisation", sampler.stop) if sampler is not None else None
        used = _safely("usage", lambda: usage(time.monotonic() - self.attempt_t0, getattr(self, "device", None),
                                              util, self.peak_reset))
        try:
            self.rd.append_attempt("end", self.attempt, epoch=self.state.epoch, step=self.state.step, usage=used)
        except OSError as exc:   # a full disk: the failure itself is what status.json records
            log.error("could not record the attempt's end in attempts.jsonl: %s", exc)

    def _join_writer(self) -> None:
        """At exit, however it happens, let a checkpoint being written finish (its error is logged)."""
        writer = getattr(self, "writer", None)
        if writer is None:
            return
        try:
            writer.wait()
        except Exception as exc:  # noqa: BLE001 - already failing or finished; say it, don't mask
            log.error("last checkpoint write failed: %s: %s", type(exc).__name__, exc)


def _cause(exc: MtlError) -> Cause:
    """status.json's ``cause`` of a failure the trainer understood (mtl-status --failures groups by it)."""
    for kind, cause in ((Stalled, Cause.STALLED), (LossNotFinite, Cause.NAN), (DataError, Cause.DATA),
                        (ConfigError, Cause.CONFIG)):
        if isinstance(exc, kind):
            return cause
    return Cause.EXCEPTION


def _progress(status: Mapping[str, object]) -> dict[str, object]:
    """How far the attempt before got, as status.json last said (its progress is refreshed every
    PROGRESS_EVERY_S): the start of attempts.jsonl's record of work trained twice."""
    return {k: status[k] for k in ("epoch", "step", "state", "updated_at") if k in status}


T = TypeVar("T")


def _safely(what: str, probe: Callable[[], T]) -> T | None:
    """A record attempts.jsonl keeps beside the run (environment, limits, usage): None, and a warning in log.txt,
    when gathering it fails; it never fails the run."""
    try:
        return probe()
    except Exception as exc:  # noqa: BLE001 - a measurement, not the run
        log.warning("%s: not recorded (%s: %s)", what, type(exc).__name__, exc)
        return None


def _gpus(device: torch.device) -> int:
    """GPUs this job holds (all it was given are billed, whether or not the trainer uses them)."""
    return torch.cuda.device_count() if device.type == "cuda" else 0


def _brief(rec: Mapping[str, object]) -> str:
    keys = [m.key for m in METRICS if m.key in rec] + (["loss"] if "loss" in rec else [])
    return " ".join(f"{k}={rec[k]:.3f}" for k in keys)


def _task_part(rec: Mapping[str, object] | None, task: str) -> dict[str, object] | None:
    """One task's numbers of a metrics.jsonl line (its loss, n and metrics), for the per-task selection."""
    if rec is None:
        return None
    return {k: v for k, v in rec.items() if k.startswith(f"{task}_")}


@contextlib.contextmanager
def _file_log(path: Path) -> Iterator[None]:
    """The run's log.txt receives the package's log records for the life of one attempt."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    root = logging.getLogger("mtl_cluster")
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield
    finally:
        root.removeHandler(handler)
        handler.close()


def run_training(cfg: TrainConfig, run_dir: Path, progress: Progress | None = None,
                 handle_signals: bool = True, lock_wait_s: float | None = None,
                 lock: RunLock | None = None) -> Summary:
    """Train one run in ``run_dir`` (resuming whatever is there); the library entry point. Raises
    RunFolderBusy when another trainer holds the folder (``lock``, ``lock_wait_s``: see ``Trainer.run``)."""
    return Trainer(cfg, run_dir, progress).run(handle_signals, lock_wait_s, lock)

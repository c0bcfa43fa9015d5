"""One training run, top to bottom: set up, resume, train_one_epoch / evaluate, checkpoint, summarise.

Every step draws one batch from each active task and sums the weighted task losses. All state that
decides the numbers (weights, optimiser, scheduler, partial-epoch sums, history) is checkpointed, and
all randomness is derived from (seed, epoch, step), so a run resumed anywhere ends identical.
"""
from __future__ import annotations

import errno
import logging
import math
import shutil
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch.utils.data import DataLoader

from ..config import TrainConfig, signature
from ..errors import CheckpointError, DataError, Interrupted, MtlError, TrainingFailed
from ..fsio import atomic_write_json
from ..rundir import RunDir, count_field, now_iso, read_json, read_jsonl
from ..tasks import TASKS
from .checkpoint import CheckpointWriter, clear_partial, list_checkpoints, load_init, load_latest
from .data import load_tasks
from .data.base import TaskData
from .data.cache import Decoded, open_cache
from .data.transforms import CachedView, TaskView, augment_batch, whole_batch
from .metrics import TaskMeter, epoch_record, task_loss
from .model import MTL_AlexNet_model, load_backbone, load_init_state
from .perf import cache_decision, cache_folder, resolve
from .sampling import EpochBatches, InOrder, default_steps, mix
from .stop import StopRequest, pending, stop_signals

log = logging.getLogger("mtl_cluster.train")

BEST_RULE = "lowest validation loss (weighted sum of the task losses); ties -> earlier epoch"
FILE_ONLY = {"file_only": True}  # the CLI prints the error line itself; don't say it twice on the console
PROGRESS_EVERY_S = 10.0          # status.json gets the current step this often (mtl-status, fault tests)
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
Progress = Callable[[str, dict[str, Any]], None]


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


class Trainer:
    """Holds the pieces of one run; ``run()`` trains to the end or raises an MtlError."""

    def __init__(self, cfg: TrainConfig, run_dir: Path, progress: Progress | None = None):
        self.cfg = cfg
        self.rd = RunDir(Path(run_dir))
        self.sig = signature(cfg)
        self.progress = progress or (lambda _e, _i: None)
        self.weights = {t: w for t, w in zip(TASKS, cfg.loss_weights) if w > 0}
        self.state = RunState()
        self.save_seconds = 0.0            # time training waited for checkpoints this epoch

    # -- set-up -------------------------------------------------------------------------------
    def _check_folder(self) -> None:
        old = self.rd.read_signature()
        if old and old != self.sig:
            raise CheckpointError(
                f"{self.rd.path} holds a run of config signature {old}, not {self.sig}; "
                f"give a new --run-dir for a changed config")
        self.rd.path.mkdir(parents=True, exist_ok=True)
        self.rd.write_config(self.cfg)

    def _build(self) -> None:
        cfg = self.cfg
        self.device = pick_device(cfg.device)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
        self.data: dict[str, TaskData] = load_tasks(cfg)
        for t, d in self.data.items():
            log.info("task %s: %s %s, %d train / %d %s images%s", t, d.dataset, d.source, len(d.train),
                     len(d.eval), d.eval_split, f", {d.skipped_at_load} skipped at load" if d.skipped_at_load else "")
        atomic_write_json(self.rd.data_file, {t: {
            "dataset": d.dataset, "source": d.source, "train_size": len(d.train), "eval_size": len(d.eval),
            "eval_split": d.eval_split, "classes": d.classes, "skipped_at_load": d.skipped_at_load,
        } for t, d in self.data.items()})
        self.data_ids = {f"{split}:{t}": images.identity() for t, d in self.data.items()
                         for split, images in (("train", d.train), ("eval", d.eval))}
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
        self.opt = torch.optim.SGD(self.model.parameters(), lr=cfg.lr_rate, momentum=cfg.momentum,
                                   weight_decay=cfg.weight_decay)
        self.sched = torch.optim.lr_scheduler.StepLR(self.opt, step_size=cfg.lr_schedule, gamma=0.1)
        self.steps = cfg.steps_per_epoch or default_steps([len(d.train) for d in self.data.values()],
                                                          cfg.batch_size)

    def _open_caches(self) -> dict[str, Decoded]:
        """Each split that goes through the pre-decoded cache (decided per split), built if missing."""
        out: dict[str, Decoded] = {}
        for t, d in self.data.items():
            for split, images in (("train", d.train), ("eval", d.eval)):
                use, why = cache_decision(self.cfg, images)
                if use:
                    def report(done: int, total: int, t: str = t, split: str = split) -> None:
                        self.progress("cache", {"task": t, "split": split, "done": done, "total": total})
                    try:
                        dec = open_cache(images, self.cfg.image_size, cache_folder(self.cfg), report,
                                         threads=max(1, self.cfg.num_workers))
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
        self.sched.load_state_dict(ckpt["scheduler"])
        s = ckpt["run"]
        self.state = RunState(epoch=s["epoch"], step=s["step"], meters=s["meters"], history=s["history"],
                              unreadable=s["unreadable"], best_epoch=s["best_epoch"], best_loss=s["best_loss"])
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
            "scheduler": self.sched.state_dict(),
            "rng": {"torch": torch.get_rng_state()},
            "run": {"epoch": s.epoch, "step": s.step, "meters": s.meters, "history": s.history,
                    "unreadable": s.unreadable, "best_epoch": s.best_epoch, "best_loss": s.best_loss},
        })

    # -- the loop -----------------------------------------------------------------------------
    def _loader(self, task: str, sampler: Any, split: str) -> DataLoader:
        images = self.data[task].train if split == "train" else self.data[task].eval
        dec = self.decoded.get(f"{split}:{task}")
        if dec is None:
            return DataLoader(TaskView(images, self.cfg.image_size), batch_sampler=sampler,
                              num_workers=self.cfg.num_workers, pin_memory=self.perf.pin_memory)
        view = CachedView(dec.pixels, dec.ok, images.labels, augment_here=self.device.type == "cpu")
        return DataLoader(view, batch_sampler=sampler, collate_fn=whole_batch, num_workers=self.cfg.num_workers,
                          pin_memory=self.perf.pin_memory)

    def _keep_readable(self, task: str, split: str, batch: list[Any]) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Drop unreadable samples from a batch, logging and counting each file once per split."""
        x, y, ok, idx = batch[:4]
        seeds = batch[4] if len(batch) > 4 else None
        if not bool(ok.all()):
            images = self.data[task].train if split == "train" else self.data[task].eval
            bad = self.state.unreadable.setdefault(f"{split}:{task}", [])
            for i in idx[~ok].tolist():
                if i not in bad:
                    bad.append(i)
                    log.warning("unreadable %s image skipped: %s", task, images.describe(i))
            bad.sort()
            if not bool(ok.any()):
                return None
            x, y = x[ok], y[ok]
            seeds = seeds[ok] if seeds is not None else None
        x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
        if x.dtype == torch.uint8:   # a cached batch for the GPU: augmented there
            x = augment_batch(x, seeds.tolist())
        return self.perf.layout(x), y

    def train_one_epoch(self, stop: StopRequest) -> dict[str, TaskMeter]:
        cfg, s = self.cfg, self.state
        meters = {t: TaskMeter(t, s.meters.get(t)) for t in self.weights}
        iters = {t: iter(self._loader(t, EpochBatches(len(self.data[t].train), cfg.batch_size,
                                                      mix(cfg.seed, s.epoch, TASKS.index(t)), self.steps,
                                                      s.step), "train"))
                 for t in self.weights}
        self.model.train()
        last_save = last_progress = time.monotonic()
        for step in range(s.step, self.steps):
            torch.manual_seed(mix(cfg.seed, s.epoch, step, 7))  # dropout: same masks however we got here
            batches = {t: self._keep_readable(t, "train", next(iters[t])) for t in self.weights}
            batches = {t: b for t, b in batches.items() if b is not None}
            if batches:
                xs = [x for x, _ in batches.values()]
                with self.perf.autocast(self.device):
                    feats = self.trunk(xs[0] if len(xs) == 1 else torch.cat(xs))
                    losses, outs, start = {}, {}, 0
                    for t, (x, y) in batches.items():
                        outs[t] = self.model.heads[t](feats[start:start + len(x)])
                        start += len(x)
                        losses[t] = task_loss(t, outs[t], y)
                    total = sum(self.weights[t] * losses[t] for t in losses)
                if not torch.isfinite(total):
                    raise TrainingFailed(f"loss is {float(total.detach())} at epoch {s.epoch + 1} step {step + 1} "
                                         f"(task losses {({t: float(v.detach()) for t, v in losses.items()})}); "
                                         f"lower lr_rate or check the data; last good checkpoint kept")
                self.opt.zero_grad(set_to_none=True)
                total.backward()
                self.opt.step()
                for t, (_, y) in batches.items():
                    meters[t].update(outs[t], y, losses[t])
            s.step = step + 1
            s.meters = {t: m.state() for t, m in meters.items()}
            self.progress("step", {"epoch": s.epoch + 1, "step": s.step, "steps": self.steps})
            if time.monotonic() - last_progress >= PROGRESS_EVERY_S:
                self.rd.update_status(epoch=s.epoch, step=s.step, steps=self.steps)
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

    @torch.no_grad()
    def evaluate(self) -> dict[str, TaskMeter]:
        """Each task's whole evaluation split, in order, deterministic transforms."""
        self.model.eval()
        meters = {t: TaskMeter(t) for t in self.weights}
        bs = max(self.cfg.batch_size, 32)
        for t in self.weights:
            for batch in self._loader(t, InOrder(len(self.data[t].eval), bs), "eval"):
                kept = self._keep_readable(t, "eval", batch)
                if kept is None:
                    continue
                x, y = kept
                with self.perf.autocast(self.device):
                    out = self.model.heads[t](self.trunk(x))
                    loss = task_loss(t, out, y)
                meters[t].update(out, y, loss)
        return meters

    def _end_epoch(self, train: dict[str, TaskMeter], val: dict[str, TaskMeter], seconds: float) -> None:
        s = self.state
        lr = self.opt.param_groups[0]["lr"]
        recs = [epoch_record(s.epoch + 1, split, m, self.weights, lr) for split, m in (("train", train),
                                                                                         ("val", val))]
        for rec in recs:
            s.history.append(rec)
            self.rd.append_metrics(rec)
        n_img = sum(recs[0].get(f"{t}_n", 0) for t in self.weights)   # training images this epoch
        if recs[1]["loss"] < s.best_loss:
            s.best_epoch, s.best_loss = s.epoch + 1, recs[1]["loss"]
        self.sched.step()
        s.epoch, s.step, s.meters = s.epoch + 1, 0, {}
        self._save()
        self.rd.append_timing({"epoch": s.epoch, "attempt": self.attempt, "seconds": round(seconds, 3),
                               "train_images_per_s": round(n_img / max(seconds, 1e-9), 2),
                               "checkpoint_s": round(self.save_seconds, 4)})
        self.save_seconds = 0.0
        self.progress("epoch", {"epoch": s.epoch, "epochs": self.cfg.epoch, "train": recs[0], "val": recs[1]})
        log.info("epoch %d/%d %s", s.epoch, self.cfg.epoch, _brief(recs[1]))
        self.rd.update_status(epoch=s.epoch, step=0)

    def _summary(self) -> dict[str, Any]:
        s = self.state
        by = {(r["epoch"], r["split"]): r for r in s.history}
        final = s.epoch
        return {
            "name": self.cfg.name, "signature": self.sig, "tasks": list(self.weights),
            "datasets": {t: d.dataset for t, d in self.data.items()},
            "eval_splits": {t: d.eval_split for t, d in self.data.items()},
            "classes": {t: d.classes for t, d in self.data.items() if d.classes},
            "age_loss_type": self.cfg.age_loss_type if "age" in self.weights else None,
            "epochs": final, "best_rule": BEST_RULE, "best_epoch": s.best_epoch,
            "best": {"train": by.get((s.best_epoch, "train")), "val": by.get((s.best_epoch, "val"))},
            "final": {"train": by.get((final, "train")), "val": by.get((final, "val"))},
            "unreadable_images": {t: sum(len(s.unreadable.get(f"{sp}:{t}", [])) for sp in ("train", "eval"))
                                  for t in self.weights},
            "skipped_at_load": {t: d.skipped_at_load for t, d in self.data.items()},
        }

    def run(self, handle_signals: bool = True) -> dict[str, Any]:
        """Train (or resume) to the last epoch; returns the summary. Raises MtlError subclasses."""
        self._check_folder()
        status = self.rd.read_status()
        if status.get("state") == "completed" and self.rd.summary_file.exists():
            log.info("%s already completed; nothing to do", self.rd.path)
            return read_json(self.rd.summary_file)
        early = pending()
        if early is not None:   # signalled while starting up: this attempt never began, status stays as it was
            raise Interrupted(f"{early.name} received before training began; start again to resume")
        self.attempt = (count_field(status, "attempts") or 0) + 1
        handler = logging.FileHandler(self.rd.log_file, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logging.getLogger("mtl_cluster").addHandler(handler)
        logging.getLogger("mtl_cluster").setLevel(logging.INFO)
        self.rd.update_status(state="running", attempts=self.attempt, reason=None, epochs=self.cfg.epoch,
                              signature=self.sig, started_at=status.get("started_at") or now_iso(),
                              attempt_started_at=now_iso())
        log.info("attempt %d of run %s (%s) in %s", self.attempt, self.cfg.name, self.sig, self.rd.path)
        try:
            with stop_signals(handle_signals) as stop:
                self._build()
                self._resume_or_init()
                self.rd.update_status(epoch=self.state.epoch, step=self.state.step, device=str(self.device))
                while self.state.epoch < self.cfg.epoch:
                    t0, self.save_seconds = time.monotonic(), 0.0
                    train = self.train_one_epoch(stop)
                    val = self.evaluate()
                    self._end_epoch(train, val, time.monotonic() - t0)
                    if stop.signum and self.state.epoch < self.cfg.epoch:
                        self.writer.wait()
                        raise Interrupted(f"{stop.name} received: checkpointed at the end of epoch "
                                          f"{self.state.epoch}; start again to resume")
                self.writer.wait()
                summary = self._summary()
                atomic_write_json(self.rd.summary_file, summary)
                self.rd.update_status(state="completed", finished_at=now_iso())
                log.info("completed: %s", _brief(summary["final"]["val"] or {}))
                return summary
        except Interrupted as exc:
            self.rd.update_status(state="interrupted", reason=str(exc), epoch=self.state.epoch,
                                  step=self.state.step)
            log.warning("%s", exc, extra=FILE_ONLY)
            raise
        except MtlError as exc:
            self.rd.update_status(state="failed", reason=str(exc))
            log.error("%s", exc, extra=FILE_ONLY)
            raise
        except OSError as exc:
            if exc.errno not in DISK_FULL:
                raise self._crashed(exc)
            failed = TrainingFailed(self._disk_full(exc))
            self._record_failure(str(failed))
            raise failed from None
        except BaseException as exc:
            raise self._crashed(exc)
        finally:
            self._join_writer()
            logging.getLogger("mtl_cluster").removeHandler(handler)
            handler.close()


    def _record_failure(self, reason: str) -> None:
        """status.json says failed and why, even on a full disk (a status file is tiny next to a checkpoint)."""
        try:
            self.rd.update_status(state="failed", reason=reason)
        except OSError as exc:
            log.error("could not record the failure in status.json: %s", exc)
        log.error("%s", reason, extra=FILE_ONLY)

    def _crashed(self, exc: BaseException) -> BaseException:
        """A bug or an unexpected error: recorded with its stack in log.txt, then re-raised as is."""
        self._record_failure(f"{type(exc).__name__}: {exc}")
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

    def _join_writer(self) -> None:
        """At exit, however it happens, let a checkpoint being written finish (its error is logged)."""
        writer = getattr(self, "writer", None)
        if writer is None:
            return
        try:
            writer.wait()
        except Exception as exc:  # noqa: BLE001 - already failing or finished; say it, don't mask
            log.error("last checkpoint write failed: %s: %s", type(exc).__name__, exc)


def _brief(rec: dict[str, Any]) -> str:
    keys = [k for k in ("gender_acc", "smile_acc", "emotion_acc", "age_acc", "age_mae", "loss") if k in rec]
    return " ".join(f"{k}={rec[k]:.3f}" for k in keys)


def run_training(cfg: TrainConfig, run_dir: Path, progress: Progress | None = None,
                 handle_signals: bool = True) -> dict[str, Any]:
    """Train one run in ``run_dir`` (resuming whatever is there); the library entry point."""
    return Trainer(cfg, run_dir, progress).run(handle_signals)

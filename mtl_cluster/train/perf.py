"""The speed switches of a run (cache, bf16, channels_last, compile, pinned memory, fused optimiser step), as they
really apply.

What the config asks for and what the machine allows can differ (no CUDA here, a split too big to
cache): the effective settings are decided once, logged and written to status.json, so a run folder
says how it was trained.
"""
from __future__ import annotations

import shutil
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import ContextManager

import torch

from ..config import TrainConfig
from .data.base import ImageSet
from .data.cache import decoded_bytes, in_memory


@dataclass(frozen=True)
class Perf:
    """Effective settings; ``notes`` says why each differs from the config (for status.json and the log)."""

    amp: bool
    channels_last: bool
    compile: bool
    pin_memory: bool
    fused: bool
    notes: dict[str, str]

    def autocast(self, device: torch.device) -> ContextManager[None]:
        """bf16 autocast where it is on, nothing otherwise."""
        return torch.autocast(device.type, dtype=torch.bfloat16) if self.amp else nullcontext()

    def layout(self, x: torch.Tensor) -> torch.Tensor:
        """Model input in the memory format the model uses."""
        return x.contiguous(memory_format=torch.channels_last if self.channels_last else torch.contiguous_format)


def resolve(cfg: TrainConfig, device: torch.device) -> Perf:
    """What applies on ``device``: bf16, compile and pinned memory fall back to off on the CPU.

    channels_last stays: oneDNN's NHWC convolutions train AlexNet ~10% faster here too (bench_train.py).
    The optimiser step is fused (one kernel over all parameters) where torch has one for the device, CPU and
    CUDA: at the demo's 64 px a whole Adam training step is 1.1-1.2x faster on this CPU, SGD 1.03-1.07x
    (bench/bench_optim.py). Not a config switch: like channels_last it changes the last bits of the numbers,
    not the experiment.
    """
    cuda = device.type == "cuda"
    notes = {"amp": cfg.amp, "channels_last": str(cfg.channels_last).lower(),
             "compile": str(cfg.compile).lower(), "pin_memory": str(cfg.pin_memory).lower()}
    if cfg.amp == "bf16" and not cuda:
        notes["amp"] = "none (bf16 asked, no CUDA)"
    if cfg.compile and not cuda:
        notes["compile"] = "false (asked, no CUDA)"
    if cfg.pin_memory and not cuda:
        notes["pin_memory"] = "false (no CUDA)"
    fused = device.type in ("cpu", "cuda")
    notes["fused_optimizer"] = str(fused).lower()
    notes["cpu_threads"] = str(torch.get_num_threads())   # what img/s was measured with (OMP_NUM_THREADS)
    return Perf(amp=cfg.amp == "bf16" and cuda, channels_last=cfg.channels_last, compile=cfg.compile and cuda,
                pin_memory=cfg.pin_memory and cuda, fused=fused, notes=notes)


def cache_decision(cfg: TrainConfig, images: ImageSet) -> tuple[bool, str]:
    """Whether a split goes through the pre-decoded cache, and why (for the log and status.json).

    ``auto``: yes when the decoded split fits ``data.cache_max_gb`` and half the free disk of the cache
    folder; ``on``: always; ``off``: never (per-sample PIL decoding).
    """
    if cfg.data_cache == "off":
        return False, "off"
    if in_memory(images, cfg.image_size) is not None:
        return True, "on (in memory)"
    if cfg.data_cache == "on":
        return True, "on"
    need = decoded_bytes(images, cfg.image_size)
    folder = cache_folder(cfg)
    probe = next((p for p in (folder, *folder.parents) if p.exists()), Path("."))
    free = shutil.disk_usage(probe).free
    budget = min(cfg.data.cache_max_gb * 2**30, free / 2)
    if need > budget:
        return False, f"off (auto: {need / 2**30:.1f} GiB decoded > budget {budget / 2**30:.1f} GiB)"
    return True, "on (auto)"


def cache_folder(cfg: TrainConfig) -> Path:
    """``data.cache_dir`` resolved against the data root."""
    return cfg.data.path(cfg.data.cache_dir)

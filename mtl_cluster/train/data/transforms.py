"""Decode, resize, augment and normalise, one sample at a time or a whole batch at once.

Randomness comes from the (sample, seed) pair the sampler hands in, never from a worker's global
RNG, so an epoch restarted at step k sees exactly the images it would have seen. Both paths take
their crop offsets and flips from ``crop_flip_index`` and do the same float operations in the same
order, so the batched path (pre-decoded cache, tensor ops, GPU when there is one) feeds the model
bit-identical inputs to the per-sample PIL path, and switching between them never changes results.
"""
from __future__ import annotations

from typing import Sequence, TypeVar

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from ..sampling import mix
from .base import UNREADABLE, ImageSet

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
# ImageNet mean/std on the 0..255 scale: normalising raw pixel values is one float pass fewer than /255 first.
MEAN255, STD255 = MEAN * 255.0, STD * 255.0
_AUG_STREAM = 0xA06
T = TypeVar("T")


def decode(images: ImageSet, i: int, size: int) -> np.ndarray:
    """Sample i as uint8 (size, size, 3): PIL bilinear resize (aligned faces: squash, don't crop).

    The one place pixels are made: the per-sample path and the cache builder both call it.
    May raise UNREADABLE.
    """
    im = images.image(i)
    if im.size != (size, size):
        im = im.resize((size, size), Image.Resampling.BILINEAR)
    return np.array(im, dtype=np.uint8)   # a writable copy: torch.from_numpy wants one


def pad_of(size: int) -> int:
    """Reflect padding of the random crop: 1/16 of the side."""
    return max(1, size // 16)


def crop_flip_params(seed: int, size: int) -> tuple[int, int, bool]:
    """(row offset, column offset, flip) of one sample's random crop, by integer arithmetic on ``mix``.

    Offsets are into the image reflect-padded by ``pad_of(size)``; seed < 0 is the centre, unflipped.
    """
    pad = pad_of(size)
    if seed < 0:
        return pad, pad, False
    n = 2 * pad + 1
    h = mix(seed, _AUG_STREAM)
    return h % n, (h >> 20) % n, bool((h >> 40) & 1)


def crop_flip_index(seeds: Sequence[int], size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Source rows and columns (each (B, size) int64) of every sample's crop and flip.

    A random crop of the reflect-padded image, flipped left-right, is a pure re-indexing of the
    image: row r of the crop is source row reflect(r + dy - pad).
    """
    pad = pad_of(size)
    dy, dx, flip = zip(*(crop_flip_params(s, size) for s in seeds))
    base = torch.arange(size)
    rows = _reflect(base + torch.tensor(dy).view(-1, 1) - pad, size)
    cols = _reflect(base + torch.tensor(dx).view(-1, 1) - pad, size)
    cols = torch.where(torch.tensor(flip).view(-1, 1), cols.flip(-1), cols)
    return rows, cols


def _runs(offset: int, size: int) -> list[tuple[slice, slice]]:
    """One axis of ``crop_flip_index`` (unflipped) as (destination, source) slice pairs: at most two runs.

    Slices let numpy copy whole rows instead of gathering pixel by pixel; the reflected stub is a
    negative-step slice.
    """
    o = offset
    if o >= 0:
        runs = [(range(0, size - o), range(o, size)), (range(size - o, size), range(size - 2, size - 2 - o, -1))]
    else:
        runs = [(range(0, -o), range(-o, 0, -1)), (range(-o, size), range(0, size + o))]
    return [(_slice(d), _slice(s)) for d, s in runs if len(d)]


def _slice(r: range) -> slice:
    return slice(r.start, r.stop if r.stop >= 0 else None, r.step)


def _reflect(idx: torch.Tensor, size: int) -> torch.Tensor:
    """torch's ``reflect`` padding as indices: -1 -> 1, size -> size - 2 (edge not repeated)."""
    idx = idx.abs()
    return torch.where(idx >= size, 2 * (size - 1) - idx, idx)


def augment(x: torch.Tensor, seed: int) -> torch.Tensor:
    """Random crop with reflect padding (1/16 of the side) and horizontal flip of one CHW image."""
    rows, cols = crop_flip_index([seed], x.shape[-1])
    return x[:, rows[0]][:, :, cols[0]]


def normalise(x: torch.Tensor) -> torch.Tensor:
    """Float pixel values 0..255 -> ImageNet-normalised, in place; channel axis 1 (batch) or 0 (one image).

    Both paths end here, so they round identically.
    """
    mean, std = (MEAN255, STD255) if x.dim() == 3 else (MEAN255[None], STD255[None])
    return x.sub_(mean.to(x.device)).div_(std.to(x.device))


def augment_batch(pixels: torch.Tensor, seeds: Sequence[int]) -> torch.Tensor:
    """Planar uint8 (B, 3, H, W) batch -> normalised float (B, 3, H, W) model input, on ``pixels``' device.

    CPU: slice copies of whole channel rows, a flip of the flipped ones, one cast. Other devices: one
    gather. Then, on both, the per-sample path's float steps (``normalise``), in place.
    """
    return normalise(_crop_cpu(pixels, seeds) if pixels.device.type == "cpu" else _crop_gather(pixels, seeds))


def _crop_cpu(pixels: torch.Tensor, seeds: Sequence[int]) -> torch.Tensor:
    """Crop (numpy slices; reflected stubs are negative steps) + flip (torch) + cast to float."""
    size, pad = pixels.shape[-1], pad_of(pixels.shape[-1])
    src = pixels.numpy()
    crop = np.empty((3, size, size), dtype=np.uint8)
    out = torch.empty((len(seeds), 3, size, size))
    for i, seed in enumerate(seeds):
        dy, dx, flip = crop_flip_params(seed, size)
        for dr, sr in _runs(dy - pad, size):
            for dc, sc in _runs(dx - pad, size):
                crop[:, dr, dc] = src[i, :, sr, sc]
        t = torch.from_numpy(crop)
        out[i].copy_(t.flip(-1) if flip else t)
    return out


def _crop_gather(pixels: torch.Tensor, seeds: Sequence[int]) -> torch.Tensor:
    """Crop + flip as one gather (fast on a GPU), then float."""
    rows, cols = (t.to(pixels.device) for t in crop_flip_index(seeds, pixels.shape[-1]))
    b = torch.arange(len(seeds), device=pixels.device).view(-1, 1, 1)
    return pixels.permute(0, 2, 3, 1)[b, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2).float()


class TaskView(Dataset):
    """An ImageSet as model input, decoded per sample. Index with ``(i, aug_seed)``; seed < 0: no augmentation.

    Returns (image, label, ok, index); an unreadable image comes back as zeros with ok=False so the
    loop can drop and count it without crashing a worker.
    """

    def __init__(self, images: ImageSet, image_size: int):
        self.images = images
        self.image_size = image_size

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, float, bool, int]:
        i, seed = key
        label = float(self.images.labels[i])
        try:
            x = torch.from_numpy(decode(self.images, i, self.image_size)).permute(2, 0, 1).float()
        except UNREADABLE:
            return torch.zeros(3, self.image_size, self.image_size), label, False, i
        if seed >= 0:
            x = augment(x, seed)
        return normalise(x.contiguous()), label, True, i


class CachedView(Dataset):
    """A pre-decoded split as whole batches: ``__getitems__`` gathers uint8 pixels in one copy.

    With ``augment_here`` (CPU training) the batch leaves augmented and normalised, in the worker;
    otherwise it stays uint8 for ``augment_batch`` on the GPU. Either way it is
    (x, labels, ok, indices, seeds), the per-sample path's tuple plus the seeds.
    """

    def __init__(self, pixels: np.ndarray, ok: np.ndarray, labels: np.ndarray, augment_here: bool):
        self.pixels, self.ok, self.labels, self.augment_here = pixels, ok, labels, augment_here

    def __len__(self) -> int:
        return len(self.labels)

    def __getitems__(self, keys: list[tuple[int, int]]) -> tuple[torch.Tensor, ...]:
        idx = np.fromiter((i for i, _ in keys), np.int64, len(keys))
        seeds = [s for _, s in keys]
        x = torch.from_numpy(np.ascontiguousarray(self.pixels[idx]))
        if self.augment_here:
            x = augment_batch(x, seeds)
        return (x, torch.from_numpy(self.labels[idx]), torch.from_numpy(self.ok[idx]), torch.from_numpy(idx),
                torch.tensor(seeds, dtype=torch.int64))


def whole_batch(batch: T) -> T:
    """``collate_fn`` of a CachedView loader: the batch is already collated."""
    return batch

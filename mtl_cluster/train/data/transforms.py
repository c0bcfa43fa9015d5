"""Decode, resize and augment one sample, deterministically from a per-sample seed.

Randomness comes from the (sample, seed) pair the sampler hands in, never from a worker's global
RNG, so an epoch restarted at step k sees exactly the images it would have seen.
"""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from .base import UNREADABLE, ImageSet

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)


def to_tensor(im: Image.Image, size: int) -> torch.Tensor:
    """RGB PIL image -> float CHW in [0, 1] at size x size (aligned faces: squash, don't crop)."""
    if im.size != (size, size):
        im = im.resize((size, size), Image.BILINEAR)
    arr = np.asarray(im, dtype=np.uint8)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(255.0)


def augment(x: torch.Tensor, seed: int) -> torch.Tensor:
    """Random crop with reflect padding (1/16 of the side) and horizontal flip, from ``seed``."""
    g = torch.Generator().manual_seed(seed)
    size = x.shape[-1]
    pad = max(1, size // 16)
    padded = torch.nn.functional.pad(x.unsqueeze(0), (pad, pad, pad, pad), mode="reflect").squeeze(0)
    dy, dx = torch.randint(0, 2 * pad + 1, (2,), generator=g).tolist()
    x = padded[:, dy:dy + size, dx:dx + size]
    if torch.rand((), generator=g).item() < 0.5:
        x = x.flip(-1)
    return x


class TaskView(Dataset):
    """An ImageSet as model input. Index with ``(i, aug_seed)``; aug_seed < 0 means no augmentation.

    Returns (image, label, ok); an unreadable image comes back as zeros with ok=False so the loop can
    drop and count it without crashing a worker.
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
            x = to_tensor(self.images.image(i), self.image_size)
        except UNREADABLE:
            return torch.zeros(3, self.image_size, self.image_size), label, False, i
        if seed >= 0:
            x = augment(x, seed)
        return (x - MEAN) / STD, label, True, i

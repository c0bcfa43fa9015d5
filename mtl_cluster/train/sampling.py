"""Deterministic batch order: every (epoch, task, step) maps to the same samples and augmentation seeds.

Nothing depends on how the process got to that step, which is what makes resume exact.
"""
from __future__ import annotations

import math
from typing import Iterator

import torch
from torch.utils.data import Sampler

_MASK = (1 << 64) - 1


def mix(*values: int) -> int:
    """splitmix64 over the values: a well-spread 63-bit seed from a tuple of counters."""
    h = 0x9E3779B97F4A7C15
    for v in values:
        h = (h ^ (v & _MASK)) & _MASK
        h = (h + 0x9E3779B97F4A7C15) & _MASK
        z = h
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
        h = z ^ (z >> 31)
    return h >> 1


def default_steps(train_sizes: list[int], batch_size: int) -> int:
    """The seed's epoch: as many steps as the smallest active training set has batches."""
    return max(1, math.ceil(min(train_sizes) / batch_size))


class EpochBatches(Sampler[list[tuple[int, int]]]):
    """Batches ``start_step..steps-1`` of one task's epoch as lists of (index, augmentation seed).

    The index stream is a chain of seeded permutations, so an epoch longer than the dataset wraps
    around with a fresh order and every batch is full.
    """

    def __init__(self, n: int, batch_size: int, seed: int, steps: int, start_step: int = 0,
                 augment: bool = True):
        self.n, self.bs, self.seed = n, batch_size, seed
        self.steps, self.start, self.augment = steps, start_step, augment

    def __len__(self) -> int:
        return max(0, self.steps - self.start)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        need = self.steps * self.bs
        stream: list[int] = []
        cycle = 0
        while len(stream) < need:
            g = torch.Generator().manual_seed(mix(self.seed, cycle))
            stream.extend(torch.randperm(self.n, generator=g).tolist())
            cycle += 1
        for k in range(self.start, self.steps):
            pos = range(k * self.bs, (k + 1) * self.bs)
            yield [(stream[p], mix(self.seed, 1 << 40, p) if self.augment else -1) for p in pos]


class InOrder(Sampler[list[tuple[int, int]]]):
    """Evaluation batches: every sample once, in order, no augmentation."""

    def __init__(self, n: int, batch_size: int):
        self.n, self.bs = n, batch_size

    def __len__(self) -> int:
        return math.ceil(self.n / self.bs)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for start in range(0, self.n, self.bs):
            yield [(i, -1) for i in range(start, min(start + self.bs, self.n))]

"""Task losses and the running sums behind every reported metric.

Meters hold plain Python floats so they can be checkpointed mid-epoch and resumed exactly.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from ..tasks import AGE_CLASSES, AGE_GROUPS

# Age-group centres used to turn 10-group probabilities into an age estimate (90..100 -> 95).
_GROUP_CENTRES = torch.arange(AGE_GROUPS, dtype=torch.float32) * 10 + 5


def age_class(age: torch.Tensor) -> torch.Tensor:
    """Age in years (continuous allowed) -> class 0..99 (= rounded age - 1, clamped)."""
    return (torch.round(age) - 1).clamp(0, AGE_CLASSES - 1).long()


def age_group(age: torch.Tensor) -> torch.Tensor:
    """Age in years -> decade 0..9 (0-9 -> 0, ..., 90-100 -> 9)."""
    return torch.floor(age / 10).clamp(0, AGE_GROUPS - 1).long()


def task_loss(task: str, logits: dict[str, torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of one task; for age, the sum over the head's outputs (100-class and/or groups)."""
    if task != "age":
        return F.cross_entropy(logits[task], labels.long())
    loss = torch.zeros((), device=labels.device)
    if "age" in logits:
        loss = loss + F.cross_entropy(logits["age"], age_class(labels))
    if "age_group" in logits:
        loss = loss + F.cross_entropy(logits["age_group"], age_group(labels))
    return loss


def age_estimates(logits: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(softmax expected age, argmax age) in years, from the 100-class head if there is one."""
    if "age" in logits:
        p = logits["age"].float().softmax(1)
        ages = torch.arange(1, AGE_CLASSES + 1, device=p.device, dtype=p.dtype)
        return p @ ages, (p.argmax(1) + 1).to(p.dtype)
    p = logits["age_group"].float().softmax(1)
    centres = _GROUP_CENTRES.to(p.device)
    return p @ centres, centres[p.argmax(1)]


class TaskMeter:
    """Sums over batches of one task's loss, accuracy and (for age) absolute errors."""

    def __init__(self, task: str, state: dict[str, float] | None = None):
        self.task = task
        self.s: dict[str, float] = dict(state or {"n": 0.0, "loss": 0.0, "correct": 0.0, "ae": 0.0, "ae_argmax": 0.0})

    def update(self, logits: dict[str, torch.Tensor], labels: torch.Tensor, loss: torch.Tensor) -> None:
        n = labels.shape[0]
        self.s["n"] += n
        self.s["loss"] += float(loss.detach()) * n
        with torch.no_grad():
            if self.task != "age":
                self.s["correct"] += float((logits[self.task].argmax(1) == labels.long()).sum())
                return
            if "age" in logits:
                self.s["correct"] += float((logits["age"].argmax(1) == age_class(labels)).sum())
            else:
                self.s["correct"] += float((logits["age_group"].argmax(1) == age_group(labels)).sum())
            expected, argmax = age_estimates(logits)
            self.s["ae"] += float((expected - labels.float()).abs().sum())
            self.s["ae_argmax"] += float((argmax - labels.float()).abs().sum())

    def state(self) -> dict[str, float]:
        return dict(self.s)

    def result(self) -> dict[str, float]:
        """``<task>_loss``, ``<task>_acc`` (%) and for age ``age_mae`` / ``age_mae_argmax`` (years)."""
        n = max(self.s["n"], 1.0)
        out = {f"{self.task}_loss": self.s["loss"] / n, f"{self.task}_acc": 100.0 * self.s["correct"] / n,
               f"{self.task}_n": int(self.s["n"])}
        if self.task == "age":
            out["age_mae"] = self.s["ae"] / n
            out["age_mae_argmax"] = self.s["ae_argmax"] / n
        return out


def epoch_record(epoch: int, split: str, meters: dict[str, TaskMeter], weights: dict[str, float],
                 lr: float) -> dict[str, Any]:
    """One metrics.jsonl line: per-task metrics plus the weighted total loss."""
    rec: dict[str, Any] = {"epoch": epoch, "split": split, "lr": lr}
    total = 0.0
    for task, meter in meters.items():
        res = meter.result()
        rec.update(res)
        total += weights[task] * res[f"{task}_loss"]
    rec["loss"] = total
    return rec

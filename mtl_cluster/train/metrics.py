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


def epsilon_error(pred: torch.Tensor, mean: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """ChaLearn LAP 2016's per-image error 1 - exp(-(x - μ)² / 2σ²): 0 at the mean apparent age, towards 1
    as the estimate leaves the annotators' spread (σ floored at 1e-3 years: a zero σ would divide by 0)."""
    sigma = sigma.to(pred.device, pred.dtype).clamp_min(1e-3)
    return 1 - torch.exp(-((pred - mean.to(pred.dtype)) ** 2) / (2 * sigma ** 2))


class TaskMeter:
    """Sums over batches of one task's loss, accuracies and (for age) absolute errors.

    With ``keep`` it also keeps each sample's correctness and age errors (the test split's per-image
    predictions, for the collector's paired per-image tests).
    """

    def __init__(self, task: str, state: dict[str, float] | None = None, keep: bool = False):
        self.task = task
        self.s: dict[str, float] = {"n": 0.0, "loss": 0.0, "correct": 0.0, "correct_group": 0.0, "ae": 0.0,
                                    "ae_argmax": 0.0, "eps": 0.0, "n_eps": 0.0, **(state or {})}
        self.samples: dict[str, list] | None = {"index": [], "correct": [], "ae": [], "ae_argmax": []} \
            if keep else None

    def update(self, logits: dict[str, torch.Tensor], labels: torch.Tensor, loss: torch.Tensor,
               index: torch.Tensor | None = None, sigma: torch.Tensor | None = None) -> None:
        """Add one batch; ``sigma`` (the labels' std, where the data has one) adds ChaLearn's ε-error."""
        n = labels.shape[0]
        self.s["n"] += n
        self.s["loss"] += float(loss.detach()) * n
        with torch.no_grad():
            right: torch.Tensor | None = None
            if self.task != "age":
                right = logits[self.task].argmax(1) == labels.long()
                self.s["correct"] += float(right.sum())
                self._keep(index, right, None, None)
                return
            if "age" in logits:
                right = logits["age"].argmax(1) == age_class(labels)
                self.s["correct"] += float(right.sum())
            if "age_group" in logits:
                right_group = logits["age_group"].argmax(1) == age_group(labels)
                self.s["correct_group"] += float(right_group.sum())
                right = right_group if right is None else right
            expected, argmax = age_estimates(logits)
            ae, ae_argmax = (expected - labels.float()).abs(), (argmax - labels.float()).abs()
            self.s["ae"] += float(ae.sum())
            self.s["ae_argmax"] += float(ae_argmax.sum())
            if sigma is not None:
                self.s["eps"] += float(epsilon_error(expected, labels.float(), sigma).sum())
                self.s["n_eps"] += n
            self._keep(index, right, ae, ae_argmax)

    def _keep(self, index: torch.Tensor | None, right: torch.Tensor | None, ae: torch.Tensor | None,
              ae_argmax: torch.Tensor | None) -> None:
        if self.samples is None or index is None:
            return
        self.samples["index"] += index.tolist()
        self.samples["correct"] += right.int().tolist() if right is not None else []
        if ae is not None and ae_argmax is not None:
            self.samples["ae"] += [round(float(v), 4) for v in ae.tolist()]
            self.samples["ae_argmax"] += [round(float(v), 4) for v in ae_argmax.tolist()]

    def state(self) -> dict[str, float]:
        return dict(self.s)

    def predictions(self) -> dict[str, object]:
        """Per-sample test results, compact: sample indices, correctness as a 0/1 string, age errors."""
        assert self.samples is not None
        out: dict[str, object] = {"index": self.samples["index"],
                               "correct": "".join(str(c) for c in self.samples["correct"])}
        if self.task == "age":
            out["ae"], out["ae_argmax"] = self.samples["ae"], self.samples["ae_argmax"]
        return out

    def result(self, heads: tuple[str, ...] = ("age",)) -> dict[str, float]:
        """``<task>_loss``, ``<task>_n`` and the task's metrics (``tasks.METRICS``) for the age head's outputs."""
        n = max(self.s["n"], 1.0)
        out = {f"{self.task}_loss": self.s["loss"] / n, f"{self.task}_n": int(self.s["n"])}
        if self.task != "age":
            out[f"{self.task}_acc"] = 100.0 * self.s["correct"] / n
            return out
        if "age" in heads:
            out["age_acc"] = 100.0 * self.s["correct"] / n
        if "age_group" in heads:
            out["age_group_acc"] = 100.0 * self.s["correct_group"] / n
        out["age_mae"] = self.s["ae"] / n
        out["age_mae_argmax"] = self.s["ae_argmax"] / n
        if self.s["n_eps"]:
            out["age_eps"] = self.s["eps"] / self.s["n_eps"]
        return out


def epoch_record(epoch: int, split: str, meters: dict[str, TaskMeter], weights: dict[str, float],
                 lr: float, age_heads: tuple[str, ...]) -> dict[str, Any]:
    """One metrics.jsonl line: per-task metrics plus the weighted total loss."""
    rec: dict[str, Any] = {"epoch": epoch, "split": split, "lr": lr}
    total = 0.0
    for task, meter in meters.items():
        res = meter.result(age_heads)
        rec.update(res)
        total += weights[task] * res[f"{task}_loss"]
    rec["loss"] = total
    return rec

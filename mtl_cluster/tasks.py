"""The four tasks, their label spaces and the age-loss variants: the vocabulary every part shares.

Pure Python (no torch) so the config validator and the collector can use it.
"""
from __future__ import annotations

TASKS: tuple[str, ...] = ("gender", "smile", "emotion", "age")

EMOTIONS: tuple[str, ...] = ("Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral")
"""FER2013's label order: class k is EMOTIONS[k]."""

NUM_CLASSES: dict[str, int] = {"gender": 2, "smile": 2, "emotion": len(EMOTIONS)}

DATASET_TASKS: dict[str, tuple[str, ...]] = {
    "synthetic": TASKS,
    "CVPR_16_ChaLearn": TASKS,          # emotion from FER2013, the rest from ChaLearn LAP 2016
    "IMDB-WIKI": ("gender", "age"),
}
"""Which tasks each dataset (config ``dataset``) has labels for: a section's rows share these tasks' budget."""

AGE_CLASSES = 100   # age 1..100 -> class age-1 (clamped)
AGE_GROUPS = 10     # decade: age 0..9 -> 0, ..., 90..100 -> 9

AGE_LOSS_TYPES: dict[str, str] = {
    "age_cls_loss": "100 age classes, cross-entropy (seed row AlexNet-Age)",
    "age_100_10_cls_loss": "100 classes + 10 decade groups, both cross-entropies summed "
                           "(seed row AlexNet-Age-100-class-10-classes-crossentropy)",
    "age_10_cls_loss": "10 decade groups only, cross-entropy "
                       "(seed row AlexNet-Age-10-classes-crossentropy)",
}


def folder_sub_name(loss_weights: tuple[float, ...]) -> str:
    """The seed's folder tag, e.g. ``_gender_1_smile_0_emotion_0_age_0``, so old users recognise runs."""
    return "".join(f"_{t}_{w:g}" for t, w in zip(TASKS, loss_weights))


def active_tasks(loss_weights: tuple[float, ...]) -> tuple[str, ...]:
    """Tasks with a non-zero weight: the only ones that get a head, data and compute."""
    return tuple(t for t, w in zip(TASKS, loss_weights) if w > 0)

"""Hand-written run folders with fixed numbers, for mtl-collect's golden tests.

Files follow the run folder contract (mtl_cluster.rundir) exactly as the trainer writes them, but the
config is a fixed dict (not TrainConfig's current defaults) and the signature a hash of it, so the
goldens do not change when the trainer gains a config key.
"""
from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import yaml

TASKS = ("gender", "smile", "emotion", "age")
BEST_RULE = "lowest validation loss (weighted sum of the task losses); ties -> earlier epoch"
EPOCHS = 3
DATASETS = {"CVPR_16_ChaLearn": {"gender": "ChaLearn_2016", "smile": "ChaLearn_2016", "emotion": "FER_2013",
                                 "age": "ChaLearn_2016"},
            "IMDB-WIKI": {"gender": "IMDB-WIKI", "age": "IMDB-WIKI"}}
BASE_CONFIG: dict[str, Any] = {
    "name": "AlexNet-Gender_Smile_Emotion_Age", "model": "MTL_AlexNet_model", "dataset": "CVPR_16_ChaLearn",
    "loss_weights": [1.0, 1.0, 1.0, 1.0], "age_loss_type": "age_cls_loss", "backbone_weights": "none",
    "load_IMDB_WIKI_pretrained_model": False, "init_from": None, "init_checkpoint": None, "image_size": 227,
    "batch_size": 8, "epoch": EPOCHS, "lr_rate": 0.001, "lr_schedule": 8, "weight_decay": 1e-06, "momentum": 0.9,
    "seed": 0, "steps_per_epoch": None, "num_workers": 4, "checkpoint_every_min": 10.0, "device": "auto",
    "data": {"root": "/scratch/data", "fer2013_eval_split": "PrivateTest"},
}


def config(**changes: Any) -> dict[str, Any]:
    """BASE_CONFIG with ``changes`` and a signature: a hash of everything but name and machine keys."""
    cfg = copy.deepcopy(BASE_CONFIG)
    cfg.update(changes)
    keyed = {k: v for k, v in cfg.items() if k not in ("name", "num_workers", "device", "init_checkpoint")}
    keyed["data"] = {k: v for k, v in cfg["data"].items() if k != "root"}
    sig = hashlib.sha256(json.dumps(keyed, sort_keys=True).encode()).hexdigest()[:12]
    return {"signature": sig, **cfg}


def folder_of(cfg: dict[str, Any]) -> str:
    """The trainer's default layout: <model>/<seed folder tag>_<dataset>/<name>_seed<seed>_<signature>."""
    tag = "".join(f"_{t}_{w:g}" for t, w in zip(TASKS, cfg["loss_weights"]))
    return f"{cfg['model']}/{tag}_{cfg['dataset']}/{cfg['name']}_seed{cfg['seed']}_{cfg['signature']}"


def history(cfg: dict[str, Any], final: dict[str, float]) -> list[dict[str, Any]]:
    """metrics.jsonl lines: accuracies end at ``final`` (MAE too), the best validation loss is at epoch 2."""
    tasks = [t for t, w in zip(TASKS, cfg["loss_weights"]) if w > 0]
    acc_shift, mae_shift, loss = {1: -4.0, 2: -0.5, 3: 0.0}, {1: 2.0, 2: 0.25, 3: 0.0}, {1: 1.0, 2: 0.5, 3: 0.625}
    out = []
    for epoch in range(1, EPOCHS + 1):
        for split in ("train", "val"):
            rec: dict[str, Any] = {"epoch": epoch, "split": split, "lr": 0.001}
            for t in tasks:
                rec[f"{t}_acc"] = final.get(f"{t}_acc", 50.0) + acc_shift[epoch] + (5.0 if split == "train" else 0.0)
                rec[f"{t}_loss"] = loss[epoch]
                rec[f"{t}_n"] = 100
            if "age" in tasks:
                rec["age_mae"] = final.get("age_mae", 10.0) + mae_shift[epoch]
                rec["age_mae_argmax"] = rec["age_mae"] + 1.0
            rec["loss"] = loss[epoch] * len(tasks)
            out.append(rec)
    return out


def summary(cfg: dict[str, Any], hist: list[dict[str, Any]]) -> dict[str, Any]:
    """summary.json as mtl_cluster.train.loop.Trainer._summary writes it."""
    tasks = [t for t, w in zip(TASKS, cfg["loss_weights"]) if w > 0]
    by = {(r["epoch"], r["split"]): r for r in hist}
    best = min((r for r in hist if r["split"] == "val"), key=lambda r: (r["loss"], r["epoch"]))["epoch"]
    ds = DATASETS[cfg["dataset"]]
    return {
        "name": cfg["name"], "signature": cfg["signature"], "tasks": tasks,
        "datasets": {t: ds[t] for t in tasks}, "eval_splits": {t: "val" for t in tasks}, "classes": {},
        "age_loss_type": cfg["age_loss_type"] if "age" in tasks else None,
        "epochs": EPOCHS, "best_rule": BEST_RULE, "best_epoch": best,
        "best": {"train": by[(best, "train")], "val": by[(best, "val")]},
        "final": {"train": by[(EPOCHS, "train")], "val": by[(EPOCHS, "val")]},
        "unreadable_images": {t: 0 for t in tasks}, "skipped_at_load": {t: 0 for t in tasks},
    }


def write_run(results: Path, cfg: dict[str, Any], final: dict[str, float] | None = None, *,
              state: str = "completed", folder: str | None = None, reason: str | None = None,
              epoch_done: int = EPOCHS, files: tuple[str, ...] = ("config", "status", "metrics", "summary")) -> Path:
    """One run folder; ``files`` picks which contract files exist (to make damaged ones)."""
    run = Path(results) / (folder or folder_of(cfg))
    run.mkdir(parents=True, exist_ok=True)
    hist = history(cfg, final or {})[: 2 * epoch_done]
    status = {"attempts": 1, "epoch": epoch_done, "epochs": EPOCHS, "host": "narvi-node12", "job_id": "4242_0",
              "reason": reason, "signature": cfg["signature"], "started_at": "2026-01-05T10:00:00+0200",
              "state": state, "updated_at": "2026-01-05T11:00:00+0200"}
    if "config" in files:
        (run / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    if "status" in files:
        (run / "status.json").write_text(json.dumps(status, indent=2, sort_keys=True) + "\n")
    if "metrics" in files:
        (run / "metrics.jsonl").write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in hist))
    if "summary" in files and state == "completed":
        (run / "summary.json").write_text(json.dumps(summary(cfg, hist), indent=2, sort_keys=True) + "\n")
    return run


def _acc(**kw: float) -> dict[str, float]:
    return {f"{k}_acc" if k != "age_mae" else k: v for k, v in kw.items()}


def write_study(results: Path) -> None:
    """The golden study: all three sections, seeds, MTL vs STL, and every kind of bad folder."""
    mtl = dict(name="AlexNet-Gender_Smile_Emotion_Age", loss_weights=[1.0, 1.0, 1.0, 1.0])
    for seed, (g, s, e, a, m) in enumerate([(84.3, 85.0, 58.3, 4.1, 7.0), (84.9, 85.4, 58.9, 4.5, 6.9),
                                            (83.7, 84.6, 57.5, 3.9, 7.2)]):
        write_run(results, config(**mtl, seed=seed), _acc(gender=g, smile=s, emotion=e, age=a, age_mae=m))
    gender = dict(name="AlexNet-Gender", loss_weights=[1.0, 0.0, 0.0, 0.0])
    for seed, g in enumerate([84.2, 83.6, 84.5]):
        write_run(results, config(**gender, seed=seed), _acc(gender=g))
    # same name, other learning rate: a row of its own, told apart by the key that differs
    write_run(results, config(**gender, seed=0, lr_rate=0.01), _acc(gender=80.1))
    smile = dict(name="AlexNet-Smile", loss_weights=[0.0, 1.0, 0.0, 0.0])
    write_run(results, config(**smile, seed=0), _acc(smile=86.5))
    write_run(results, config(**smile, seed=1), state="failed", epoch_done=1,
              reason="loss is nan at epoch 2 step 3; lower lr_rate or check the data; last good checkpoint kept")
    damaged = write_run(results, config(**smile, seed=2), _acc(smile=86.0))
    (damaged / "summary.json").write_text('{"name": "AlexNet-Smile", "best": {"val": ')
    emotion = dict(name="AlexNet-Emotion", loss_weights=[0.0, 0.0, 1.0, 0.0])
    for seed, e in enumerate([61.3, 60.7]):
        write_run(results, config(**emotion, seed=seed), _acc(emotion=e))
    write_run(results, config(**emotion, seed=2), state="running", epoch_done=1)
    write_run(results, config(**emotion, seed=3), state="interrupted", epoch_done=2,
              reason="SIGUSR2 received: checkpointed at the end of epoch 2; start again to resume")
    age = dict(name="AlexNet-Age", loss_weights=[0.0, 0.0, 0.0, 1.0])
    for seed, (a, m) in enumerate([(3.2, 7.7), (3.6, 7.5)]):
        write_run(results, config(**age, seed=seed), _acc(age=a, age_mae=m))
    write_run(results, config(**age, seed=2), _acc(age=3.4, age_mae=7.6), files=("config", "metrics", "summary"))
    write_run(results, config(name="AlexNet-Age-100-class-10-classes-crossentropy", loss_weights=[0, 0, 0, 1.0],
                              age_loss_type="age_100_10_cls_loss"), _acc(age=5.0, age_mae=6.9))
    # a copied folder (same signature) and folders missing files
    write_run(results, config(**gender, seed=0), _acc(gender=84.2), folder="copies/AlexNet-Gender_seed0")
    write_run(results, config(**gender, seed=4), _acc(gender=84.0), folder="broken/no_config",
              files=("status", "metrics", "summary"))
    write_run(results, config(**gender, seed=5), _acc(gender=84.0), folder="broken/no_summary",
              files=("config", "status", "metrics"))
    write_run(results, config(**gender, seed=6), folder="broken/queued", files=("config",))
    # load_IMDB_WIKI_pretrained_model = True: one seed each, a delta without an interval
    pre = dict(load_IMDB_WIKI_pretrained_model=True, init_from="AlexNet-Gender_Age",
               init_checkpoint="results/MTL_AlexNet_model/_gender_1_smile_0_emotion_0_age_1_IMDB-WIKI/best.pt")
    write_run(results, config(**mtl, **pre), _acc(gender=86.0, smile=87.1, emotion=60.2, age=5.5, age_mae=6.1))
    write_run(results, config(**gender, **pre), _acc(gender=85.5))
    # IMDB-WIKI pretraining
    imdb = dict(dataset="IMDB-WIKI")
    for seed, (g, a, m) in enumerate([(88.0, 6.0, 6.4), (88.4, 6.2, 6.2)]):
        write_run(results, config(**imdb, name="AlexNet-Gender_Age", loss_weights=[1.0, 0, 0, 1.0], seed=seed),
                  _acc(gender=g, age=a, age_mae=m))
    write_run(results, config(**imdb, name="AlexNet-Gender", loss_weights=[1.0, 0, 0, 0]), _acc(gender=87.9))
    write_run(results, config(**imdb, name="AlexNet-Age", loss_weights=[0, 0, 0, 1.0]), _acc(age=5.8, age_mae=6.6))

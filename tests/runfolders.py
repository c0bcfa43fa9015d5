"""Hand-written run folders with fixed numbers, for mtl-collect's golden tests.

Files follow the run folder contract (mtl_cluster.rundir) exactly as the trainer writes them, but the
config is a fixed dict (not TrainConfig's current defaults) and the signature a hash of it, so the
goldens do not change when the trainer gains a config key.
"""
from __future__ import annotations

import copy
import hashlib
import json
import time
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


# Per task, the epoch its validation loss chooses (protocol 2 on): they differ, so the table must pick per task.
SELECTED = {"gender": 2, "smile": 3, "emotion": 1, "age": 2}
STEPS = 3 * 464


def _metric_keys(task: str, age_loss_type: str) -> list[str]:
    if task != "age":
        return [f"{task}_acc"]
    heads = {"age_cls_loss": ["age_acc"], "age_100_10_cls_loss": ["age_acc", "age_group_acc"],
             "age_10_cls_loss": ["age_group_acc"]}[age_loss_type]
    return heads + ["age_mae_argmax", "age_mae"]


def history(cfg: dict[str, Any], final: dict[str, float], protocol: int = 3) -> list[dict[str, Any]]:
    """metrics.jsonl lines.

    Protocol 2: at each task's SELECTED epoch, its test metrics equal ``final`` (the given numbers); other
    epochs are worse by 2 + epoch points (MAE: better-is-lower, so higher). Validation numbers differ from
    test ones (+3 points), so a table that reports the validation split, or one epoch for all tasks, is wrong.
    Protocol 1 (before the test split): accuracies end at ``final``, the best total validation loss is epoch 2.
    """
    if protocol == 1:
        return _history_v1(cfg, final)
    tasks = [t for t, w in zip(TASKS, cfg["loss_weights"]) if w > 0]
    out = []
    for epoch in range(1, EPOCHS + 1):
        for split in ("train", "val", "test"):
            rec: dict[str, Any] = {"epoch": epoch, "split": split, "lr": 0.001}
            for t in tasks:
                chosen = epoch == SELECTED[t]
                for key in _metric_keys(t, cfg["age_loss_type"]):
                    mae = "mae" in key
                    value = final.get(key, final.get("age_mae", 10.0) + (1.0 if key == "age_mae_argmax" else 0.0)
                                      if mae else 50.0)
                    value += 0.0 if chosen else (1 if mae else -1) * (2.0 + epoch)
                    rec[key] = value + {"train": 5.0, "val": 3.0, "test": 0.0}[split] * (-1 if mae else 1)
                rec[f"{t}_loss"] = 0.5 if chosen else 1.0 + epoch / 10
                rec[f"{t}_n"] = 100
            rec["loss"] = sum(rec[f"{t}_loss"] for t in tasks)
            out.append(rec)
    return out


def _history_v1(cfg: dict[str, Any], final: dict[str, float]) -> list[dict[str, Any]]:
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


def summary(cfg: dict[str, Any], hist: list[dict[str, Any]], protocol: int = 3,
            steps: int = STEPS, params: int | None = None) -> dict[str, Any]:
    """summary.json as mtl_cluster.train.loop.Trainer._summary writes it (protocol 1: as it did before)."""
    tasks = [t for t, w in zip(TASKS, cfg["loss_weights"]) if w > 0]
    by = {(r["epoch"], r["split"]): r for r in hist}
    best = min((r for r in hist if r["split"] == "val"), key=lambda r: (r["loss"], r["epoch"]))["epoch"]
    ds = DATASETS[cfg["dataset"]]
    out = {
        "name": cfg["name"], "signature": cfg["signature"], "tasks": tasks,
        "datasets": {t: ds[t] for t in tasks}, "classes": {},
        "age_loss_type": cfg["age_loss_type"] if "age" in tasks else None,
        "epochs": EPOCHS, "best_rule": BEST_RULE, "best_epoch": best,
        "best": {"train": by[(best, "train")], "val": by[(best, "val")]},
        "final": {"train": by[(EPOCHS, "train")], "val": by[(EPOCHS, "val")]},
        "unreadable_images": {t: 0 for t in tasks}, "skipped_at_load": {t: 0 for t in tasks},
    }
    if params is not None:
        out["trainable_params"] = params
    if protocol == 1:
        return {**out, "eval_splits": {t: "val" for t in tasks}}
    test_split = {"ChaLearn_2016": "VALID", "FER_2013": "PrivateTest", "IMDB-WIKI": "val"}
    out["best"]["test"] = by[(best, "test")]
    out["final"]["test"] = by[(EPOCHS, "test")]
    part = lambda rec, t: {k: v for k, v in rec.items() if k.startswith(f"{t}_")}  # noqa: E731
    out.update(
        protocol=protocol, splits={t: {"train": "train", "val": "hold-out", "test": test_split[ds[t]]} for t in tasks},
        budget={"rule": "budget dataset", "steps_per_epoch": steps // EPOCHS, "epochs": EPOCHS, "steps": steps,
                "batch_size": 8, "images": {t: steps * 8 for t in tasks}},
        selection={"rule": "per task", "tasks": {t: {"epoch": SELECTED[t], "val": part(by[(SELECTED[t], "val")], t),
                                                     "test": part(by[(SELECTED[t], "test")], t)} for t in tasks}},
    )
    return out


# The cost records (mtl-collect --cost): trainable parameters = a shared trunk + one head per task, and a
# run's hours grow with its tasks (each step draws one batch per task), so a 4-task run costs 0.5x its 4 rows.
TRUNK_PARAMS, HEAD_PARAMS = 2_469_696, {"gender": 4_200_450, "smile": 4_200_450, "emotion": 4_202_503,
                                        "age": 4_295_012}
T0 = 1_767_600_000.0        # 2026-01-05T08:00:00Z: the first attempt's start
Attempt = tuple[tuple[int, int], tuple[int, int], float, bool]
"""(resumed at (epoch, step), reached (epoch, step), hours, ended with an end line: False = killed)."""


def params_of(cfg: dict[str, Any]) -> int:
    return TRUNK_PARAMS + sum(HEAD_PARAMS[t] for t, w in zip(TASKS, cfg["loss_weights"]) if w > 0)


def hours_of(cfg: dict[str, Any]) -> float:
    return 0.25 * sum(1 for w in cfg["loss_weights"] if w > 0) + (0.5 if cfg["dataset"] != "IMDB-WIKI" else 0.25)


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime(t))


# The environment records (the drift audit, rundir.ENV_FIELDS): one attempt's ``env`` as the trainer writes it.
ENV: dict[str, Any] = {"python": "3.11.7", "torch": "2.14.1+cu130", "torchvision": "0.29.1+cu130", "cuda": "13.0",
                       "cudnn": "92400", "gpu": "NVIDIA A100-SXM4-40GB", "driver": "580.65.06",
                       "git_commit": "d5ec0c5d21f9831f61417328ee36ae42250fdb21", "git_diff": None,
                       "host": "narvi-node12"}


def environment(cfg: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """ENV with ``changes``, and the run's data under ``data`` (each trained split's identity, the same for every run
    of a dataset unless ``data_changes`` says otherwise) and ``data_cache`` (its cache key): what write_cost_records
    puts in the attempt's start (env) and resume (data, data_cache) lines. ``slurm``, ``usage``: those lines'
    Slurm limits and measured use."""
    data_changes = changes.pop("data_changes", {})
    tasks = [t for t, w in zip(TASKS, cfg["loss_weights"]) if w > 0]
    data = {f"{sp}:{t}": hashlib.blake2b(f"{cfg['dataset']}:{sp}:{t}".encode(), digest_size=8).hexdigest()
            for sp in ("train", "val", "test") for t in tasks}
    data.update(data_changes)
    cache = {k: hashlib.blake2b(f"{v}:227:3".encode(), digest_size=12).hexdigest() for k, v in data.items()}
    return {**ENV, **changes, "data": data, "data_cache": cache}


def write_cost_records(run: Path, cfg: dict[str, Any], attempts: list[Attempt] | None = None, gpus: int = 1,
                       steps: int = STEPS, envs: list[dict[str, Any]] | None = None) -> None:
    """attempts.jsonl and timings.jsonl as the trainer writes them; by default one uninterrupted attempt.
    ``envs``: per attempt (the last one repeats) an ``environment(...)``: written into its start, resume and end
    lines as the trainer does; without it, the lines are those of the trainer from before the records."""
    per_epoch = steps // EPOCHS
    n_tasks = sum(1 for w in cfg["loss_weights"] if w > 0)
    attempts = attempts or [((0, 0), (EPOCHS, 0), hours_of(cfg), True)]
    att, tim, t, previous = [], [], T0, {}
    for k, (begin, reached, hours, ended) in enumerate(attempts, start=1):
        end = t + hours * 3600
        env = dict(envs[min(k, len(envs)) - 1]) if envs else None
        data = {f: env.pop(f) for f in ("data", "data_cache")} if env else {}
        extra_start = {"env": env, "slurm": env.pop("slurm", None)} if env else {}
        extra_end = {"usage": env.pop("usage", None)} if env else {}
        att.append({"event": "start", "attempt": k, "at": t, "previous": previous, **extra_start})
        att.append({"event": "resume", "attempt": k, "at": t + 60, "epoch": begin[0], "step": begin[1],
                    "steps_per_epoch": per_epoch, "gpus": gpus, **data})
        done = list(range(begin[0] + 1, reached[0] + 1))
        for i, e in enumerate(done, start=1):
            seconds = (end - t - 60) / max(len(done), 1)
            tim.append({"epoch": e, "attempt": k, "seconds": round(seconds, 3), "at": round(t + 60 + i * seconds, 3),
                        "train_images_per_s": round(per_epoch * 8 * n_tasks / seconds, 2), "checkpoint_s": 0.05})
        if ended:
            att.append({"event": "end", "attempt": k, "at": end, "epoch": reached[0], "step": reached[1], **extra_end})
        previous = {"epoch": reached[0], "step": reached[1], "state": "interrupted" if ended else "running",
                    "updated_at": _iso(end)}
        t = end + 600   # requeued: the wait in the queue is no attempt's time
    (run / "attempts.jsonl").write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in att))
    (run / "timings.jsonl").write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in tim))


def write_run(results: Path, cfg: dict[str, Any], final: dict[str, float] | None = None, *,
              state: str = "completed", folder: str | None = None, reason: str | None = None,
              epoch_done: int = EPOCHS, files: tuple[str, ...] = ("config", "status", "metrics", "summary"),
              protocol: int = 3, steps: int = STEPS, cost: bool = True,
              attempts: list[Attempt] | None = None, envs: list[dict[str, Any]] | None = None) -> Path:
    """One run folder; ``files`` picks which contract files exist (to make damaged ones); ``cost``: write the
    cost records (trainable_params, attempts.jsonl, timings.jsonl; ``attempts``, ``envs`` as write_cost_records)."""
    run = Path(results) / (folder or folder_of(cfg))
    run.mkdir(parents=True, exist_ok=True)
    hist = history(cfg, final or {}, protocol)
    hist = [r for r in hist if r["epoch"] <= epoch_done]
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
        params = params_of(cfg) if cost else None
        text = json.dumps(summary(cfg, hist, protocol, steps, params), indent=2, sort_keys=True) + "\n"
        (run / "summary.json").write_text(text)
    if cost and state == "completed":
        write_cost_records(run, cfg, attempts, steps=steps, envs=envs)
    return run


def _acc(**kw: float) -> dict[str, float]:
    """``gender=84.3`` -> gender_acc; ``age_mae=7.0`` is the seed's (argmax) MAE, the expected one 0.5 lower."""
    out = {f"{k}_acc": v for k, v in kw.items() if k != "age_mae"}
    if "age_mae" in kw:
        out.update(age_mae_argmax=kw["age_mae"], age_mae=kw["age_mae"] - 0.5)
    return out


# Seed 1 of the multitask row was killed after epoch 2's training, its checkpoint from mid-epoch 2 (step 232 of
# 464): the next attempt trained half an epoch again (1.0 h killed + 0.75 h resumed).
INTERRUPTED: list[Attempt] = [((0, 0), (2, 0), 1.0, False), ((1, 232), (3, 0), 0.75, True)]


def write_study(results: Path) -> None:
    """The golden study: all three sections, seeds, MTL vs STL, and every kind of bad folder."""
    mtl = dict(name="AlexNet-Gender_Smile_Emotion_Age", loss_weights=[1.0, 1.0, 1.0, 1.0])
    for seed, (g, s, e, a, m) in enumerate([(84.3, 85.0, 58.3, 4.1, 7.0), (84.9, 85.4, 58.9, 4.5, 6.9),
                                            (83.7, 84.6, 57.5, 3.9, 7.2)]):
        write_run(results, config(**mtl, seed=seed), _acc(gender=g, smile=s, emotion=e, age=a, age_mae=m),
                  attempts=INTERRUPTED if seed == 1 else None)
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
    for seed, e in enumerate([61.3, 61.9]):   # MTL - STL = -3.0 at both seeds: zero variance, no interval
        write_run(results, config(**emotion, seed=seed), _acc(emotion=e), cost=seed == 0)   # seed 1: an old run
    write_run(results, config(**emotion, seed=2), state="running", epoch_done=1)
    write_run(results, config(**emotion, seed=3), state="interrupted", epoch_done=2,
              reason="SIGUSR2 received: checkpointed at the end of epoch 2; start again to resume")
    age = dict(name="AlexNet-Age", loss_weights=[0.0, 0.0, 0.0, 1.0])
    for seed, (a, m) in enumerate([(3.2, 7.7), (3.6, 7.5)]):
        write_run(results, config(**age, seed=seed), _acc(age=a, age_mae=m))
    write_run(results, config(**age, seed=2), _acc(age=3.4, age_mae=7.6), files=("config", "metrics", "summary"))
    write_run(results, config(name="AlexNet-Age-100-class-10-classes-crossentropy", loss_weights=[0, 0, 0, 1.0],
                              age_loss_type="age_100_10_cls_loss"), _acc(age=5.0, age_group=41.0, age_mae=6.9))
    # runs from before the test split (protocol 1): their own rows, their meaning stated
    write_run(results, config(name="AlexNet-Age-10-classes-crossentropy", loss_weights=[0, 0, 0, 1.0],
                              age_loss_type="age_10_cls_loss", seed=7), _acc(age=30.0, age_mae=8.1), protocol=1,
              cost=False)
    write_run(results, config(**gender, seed=7, lr_rate=0.002), _acc(gender=83.0), protocol=1, cost=False)
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
    write_run(results, config(**imdb, name="AlexNet-Gender", loss_weights=[1.0, 0, 0, 0]), _acc(gender=87.9),
              steps=2 * STEPS)   # trained longer: the section warns about unequal budgets
    write_run(results, config(**imdb, name="AlexNet-Age", loss_weights=[0, 0, 0, 1.0]), _acc(age=5.8, age_mae=6.6),
              cost=False)   # from before the cost records: dashes


def write_fine_tuned_study(results: Path) -> None:
    """A fine-tuned section whose single-task gender row starts from another parent than its multitask row (the
    layout experiments.yaml had before issue 21): that Δ is refused with its reason; smile, from the same parent,
    is compared."""
    tuned = dict(load_IMDB_WIKI_pretrained_model=True, lr_scheduler="cosine")
    parents = {"mtl": "IMDB-WIKI-AlexNet-Gender_Age", "gender": "IMDB-WIKI-AlexNet-Gender",
               "smile": "IMDB-WIKI-AlexNet-Gender_Age"}
    rows = {"mtl": ("AlexNet-Gender_Smile", [1.0, 1.0, 0.0, 0.0]), "gender": ("AlexNet-Gender", [1.0, 0, 0, 0]),
            "smile": ("AlexNet-Smile", [0, 1.0, 0, 0])}
    numbers = {"mtl": [(85.1, 86.0), (85.9, 86.3), (84.8, 86.6)], "gender": [(84.0, 0), (84.9, 0), (84.1, 0)],
               "smile": [(0, 85.2), (0, 85.6), (0, 85.5)]}
    for key, (name, weights) in rows.items():
        for seed, (g, s) in enumerate(numbers[key]):
            cfg = config(name=name, loss_weights=weights, seed=seed, init_from=parents[key],
                         init_checkpoint=f"/results/{parents[key]}_seed{seed}", **tuned)
            values = {k: v for k, v in (("gender", g), ("smile", s)) if weights[TASKS.index(k)]}
            write_run(results, cfg, _acc(**values))

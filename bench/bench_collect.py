"""How long mtl-collect takes to load a large study, against a naive loader. Not part of the test suite.

    .venv/bin/python bench/bench_collect.py [--runs 10000] [--keep DIR]

Writes N synthetic run folders (config.yaml, status.json, summary.json, metrics.jsonl of 40 epochs; 2% of
them running, failed or damaged) into a temp folder, then times, on a warm page cache:
  * mtl-collect: collect.load_runs (+ compare.build_report, the whole table) with its thread pool and with 1 thread;
  * naive: os.walk, yaml.safe_load / json.load of every file of every run folder, one one-row DataFrame
    per run and one pd.concat at the end (what a quick script would do); and the same naive loop
    reading only the three files mtl-collect reads, to separate "reads less" from "reads faster".
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mtl_cluster.collect.scan import default_workers, load_runs  # noqa: E402
from mtl_cluster.collect.compare import build_report  # noqa: E402
from mtl_cluster.config import TrainConfig, signature  # noqa: E402
from mtl_cluster.collect.mounts import filesystem_type  # noqa: E402

TASKS = ("gender", "smile", "emotion", "age")
ROWS = [("AlexNet-Gender_Smile_Emotion_Age", (1, 1, 1, 1)), ("AlexNet-Gender", (1, 0, 0, 0)),
        ("AlexNet-Smile", (0, 1, 0, 0)), ("AlexNet-Emotion", (0, 0, 1, 0)), ("AlexNet-Age", (0, 0, 0, 1))]


def _record(rng: random.Random, epoch: int, split: str, tasks: list[str]) -> dict:
    rec = {"epoch": epoch, "split": split, "lr": 0.001}
    for t in tasks:
        rec.update({f"{t}_acc": rng.uniform(50, 90), f"{t}_loss": rng.uniform(0.2, 2), f"{t}_n": 1000})
    if "age" in tasks:
        rec.update(age_mae=rng.uniform(5, 9), age_mae_argmax=rng.uniform(5, 10))
    rec["loss"] = sum(rec[f"{t}_loss"] for t in tasks)
    return rec


def make_study(root: Path, n: int, epochs: int = 40) -> None:
    """``n`` run folders: 5 experiments x 4 lr_rate x 2 sections (40 configs) x n/40 seeds."""
    rng = random.Random(0)
    for i in range(n):
        name, weights = ROWS[i % len(ROWS)]
        cfg = TrainConfig(name=name, dataset="CVPR_16_ChaLearn", loss_weights=tuple(map(float, weights)),
                          seed=i // 40, lr_rate=[0.001, 0.01, 0.0005, 0.002][(i // 5) % 4],
                          load_IMDB_WIKI_pretrained_model=bool((i // 20) % 2), epoch=epochs,
                          init_checkpoint="x" if (i // 20) % 2 else None)
        sig = signature(cfg)
        run = root / cfg.model / f"{i % 100:03d}" / f"{name}_seed{cfg.seed}_{sig}"  # unique: 40 configs x 250 seeds
        run.mkdir(parents=True)
        (run / "config.yaml").write_text(yaml.safe_dump({"signature": sig, **cfg.to_dict()}, sort_keys=False))
        tasks = [t for t, w in zip(TASKS, weights) if w]
        hist = [_record(rng, e, s, tasks) for e in range(1, epochs + 1) for s in ("train", "val")]
        (run / "metrics.jsonl").write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in hist))
        state = "completed" if i % 50 else ["running", "failed"][(i // 50) % 2]
        (run / "status.json").write_text(json.dumps({"state": state, "attempts": 1, "epoch": epochs,
                                                     "epochs": epochs, "reason": None}, indent=2))
        if state == "completed":
            best = min((r for r in hist if r["split"] == "val"), key=lambda r: r["loss"])
            by = {(r["epoch"], r["split"]): r for r in hist}
            summary = {"name": name, "signature": sig, "tasks": tasks, "datasets": {t: "ChaLearn_2016" for t in tasks},
                       "epochs": epochs, "best_rule": "lowest validation loss", "best_epoch": best["epoch"],
                       "best": {"train": by[(best["epoch"], "train")], "val": best},
                       "final": {"train": by[(epochs, "train")], "val": by[(epochs, "val")]}}
            text = json.dumps(summary, indent=2, sort_keys=True)
            (run / "summary.json").write_text(text if i % 97 else text[:100])   # ~1% damaged


def naive(root: Path, files: tuple[str, ...]) -> pd.DataFrame:
    """The quick script: walk, parse every file, one-row DataFrames, concat."""
    frames = []
    for folder, dirs, names in os.walk(root):
        if "config.yaml" not in names:
            continue
        dirs[:] = []
        row = {"path": folder}
        try:
            for name in files:
                p = Path(folder) / name
                if not p.exists():
                    continue
                with open(p) as f:
                    if name.endswith(".yaml"):
                        cfg = yaml.safe_load(f)
                        row.update(name=cfg["name"], seed=cfg["seed"], lr_rate=cfg["lr_rate"])
                    elif name.endswith(".jsonl"):
                        row["epochs_logged"] = len([json.loads(line) for line in f])
                    else:
                        d = json.load(f)
                        if name == "summary.json":
                            row.update({k: v for k, v in d["best"]["val"].items() if k.endswith(("_acc", "_mae"))})
                        else:
                            row["state"] = d.get("state")
        except (ValueError, KeyError):
            row["state"] = "damaged"
        frames.append(pd.DataFrame([row]))
    return pd.concat(frames, ignore_index=True)


def timed(fn, *args, **kw):
    t0 = time.perf_counter()
    out = fn(*args, **kw)
    return time.perf_counter() - t0, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--keep", type=Path, help="make/keep the study here instead of a temp folder")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_collect_")) if args.keep is None else args.keep
    root = tmp / "results"
    try:
        if not root.exists():
            t, _ = timed(make_study, root, args.runs)
            print(f"made {args.runs} run folders in {t:.1f} s under {root}")
        load_runs(root)   # warm the page cache the same way for everyone
        t_collect, runs = timed(load_runs, root)
        t_report, report = timed(build_report, runs)
        t_eight, _ = timed(load_runs, root, workers=8)
        t_one, _ = timed(load_runs, root, workers=1)
        t_naive3, df3 = timed(naive, root, ("config.yaml", "status.json", "summary.json"))
        t_naive, df = timed(naive, root, ("config.yaml", "status.json", "summary.json", "metrics.jsonl"))
        fs, n = filesystem_type(root) or "unknown", default_workers(root)
        print(f"mtl-collect load_runs (default: {n} thread{'s' if n > 1 else ''} on {fs}): {t_collect:7.2f} s  "
              f"({len(runs.frame)} counted, {len(runs.problems)} listed)")
        print(f"mtl-collect load_runs (8 threads):  {t_eight:7.2f} s")
        print(f"mtl-collect load_runs (1 thread):   {t_one:7.2f} s")
        print(f"mtl-collect build_report:           {t_report:7.2f} s  ({sum(len(s.rows) for s in report.sections)} rows)")
        print(f"naive, same 3 files:                {t_naive3:7.2f} s  ({len(df3)} rows)")
        print(f"naive, every file (+metrics.jsonl): {t_naive:7.2f} s  ({len(df)} rows)")
        total = t_collect + t_report
        print(f"ratio naive(every file) / mtl-collect (load + report): {t_naive / total:5.1f}x; "
              f"naive(same files) / mtl-collect load: {t_naive3 / t_collect:5.1f}x")
    finally:
        if args.keep is None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

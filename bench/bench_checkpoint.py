"""The checkpoint stall: share of epoch time training waits for checkpoints at default settings.

    .venv/bin/python bench/bench_checkpoint.py [--steps 20]

Trains a multitask run (four heads: the largest checkpoint) at 224 px, batch 8, with the default
``checkpoint_every_min: 10`` (so: one checkpoint at the end of each epoch) and reads the stall the loop
recorded (``checkpoint_s`` in timings.jsonl: the state copy plus any wait for the previous write)
against the epoch's seconds. For scale it also times a synchronous save of the same state (the
seed's way: pickle + fsync while training waits) and gives the shortest epoch that stays under 2%.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from common import figure

from mtl_cluster.config import train_config_from_dict
from mtl_cluster.train.checkpoint import save_checkpoint
from mtl_cluster.train.loop import Trainer


def main(argv: list[str] | None = None) -> list[str]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench_ckpt_") as tmp:
        cfg = train_config_from_dict({"dataset": "synthetic", "image_size": 224, "batch_size": 8, "epoch": 2,
                                      "steps_per_epoch": args.steps,
                                      "data": {"synthetic_train_size": 8 * args.steps, "synthetic_eval_size": 8}})
        tr = Trainer(cfg, Path(tmp) / "run")
        tr.run(handle_signals=False)
        timings = [json.loads(line) for line in (Path(tmp) / "run" / "timings.jsonl").read_text().splitlines()]
        last = timings[-1]
        stall, epoch = last["checkpoint_s"], last["seconds"]
        state = {"epoch": 9, "step": 1, "model": tr.model.state_dict(), "optimizer": tr.opt.state_dict()}
        t0 = time.perf_counter()
        save_checkpoint(Path(tmp) / "sync", state)
        sync = time.perf_counter() - t0
    share = stall / epoch
    line = figure("ckpt", "checkpoint stall at default settings (multitask, 224 px), share of epoch time", share, 0.02,
                  f"a {epoch:.1f} s epoch ({args.steps} steps): {stall * 1000:.0f} ms "
                  f"blocking per save (background write) vs {sync * 1000:.0f} ms for a synchronous save; "
                  f"under 2% for epochs >= {stall / 0.02:.1f} s", share=True, at_most=True)
    print(line, flush=True)
    return [line]


if __name__ == "__main__":
    main()

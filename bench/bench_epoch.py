"""Figure 2: a single-task epoch now vs a seed-style epoch that runs all four tasks with three zero weights.

    .venv/bin/python bench/bench_epoch.py [--steps 6] [--size 224] [--batch 8]

Both train gender on the same ChaLearn-style JPEG folders for the same steps, at the seed's settings
(224 px, batch 8), on this CPU with all its threads and ``num_workers: 0``:
  * seed style: all four datasets loaded, four heads, a batch of every task through the trunk at each
    step, losses of smile/emotion/age multiplied by 0, per-sample PIL decoding (``data_cache: off``);
  * now: ``loss_weights: [1, 0, 0, 0]`` (one dataset, one head, one batch) through the image cache.
Times ``Trainer.train_one_epoch`` only (after a warm-up epoch), the part the zero weights multiply.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from common import figure, write_study_data

from mtl_cluster.config import train_config_from_dict
from mtl_cluster.tasks import TASKS
from mtl_cluster.train.loop import StopRequest, Trainer


def epoch_seconds(run: Path, raw: dict, seed_style: bool) -> tuple[float, int]:
    """Seconds of one timed epoch (after one warm-up epoch) and the training images it used."""
    tr = Trainer(train_config_from_dict(raw), run)
    if seed_style:   # the seed: every task loaded and run, weights 0 for all but gender
        tr.weights = dict(zip(TASKS, (1.0, 0.0, 0.0, 0.0)))
    tr._check_folder()
    tr._build()
    tr._resume_or_init()
    tr.train_one_epoch(StopRequest())
    tr.state.step = 0
    t0 = time.perf_counter()
    meters = tr.train_one_epoch(StopRequest())
    seconds = time.perf_counter() - t0
    return seconds, int(sum(m.s["n"] for m in meters.values()))


def main(argv: list[str] | None = None) -> list[str]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--batch", type=int, default=8)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench_epoch_") as tmp:
        data = Path(tmp) / "data"
        write_study_data(data, n_per_class=args.steps * args.batch)
        base = {"dataset": "CVPR_16_ChaLearn", "image_size": args.size, "batch_size": args.batch,
                "epoch": 2, "steps_per_epoch": args.steps, "data": {"root": str(data)}}
        seed_s, seed_n = epoch_seconds(Path(tmp) / "seed", {**base, "loss_weights": [1, 1, 1, 1],
                                                            "data_cache": "off"}, seed_style=True)
        now_s, now_n = epoch_seconds(Path(tmp) / "now", {**base, "loss_weights": [1, 0, 0, 0],
                                                         "data_cache": "on"}, seed_style=False)
    line = figure(2, f"single-task epoch vs seed-style 4-task epoch ({args.steps} steps, {args.size} px, "
                     f"batch {args.batch})", seed_s / now_s, 3.5,
                  f"now {now_s:.2f} s ({now_n / now_s:.1f} gender img/s) vs seed style {seed_s:.2f} s "
                  f"({seed_n} images through the trunk for {now_n} that count)")
    print(line, flush=True)
    return [line]


if __name__ == "__main__":
    main()

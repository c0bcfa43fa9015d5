"""Figure 2: a single-task epoch now vs a seed-style epoch that runs all four tasks with three zero weights.

    .venv/bin/python bench/bench_epoch.py [--steps 6] [--size 224] [--batch 8]

Both train gender on the same ChaLearn-style JPEG folders for the same steps, at the seed's settings
(224 px, batch 8), on this CPU with all its threads and ``num_workers: 0``:
  * seed style: all four datasets loaded, four heads, a batch of every task through the trunk at each
    step, losses of smile/emotion/age multiplied by 0, per-sample PIL decoding (``data_cache: off``);
  * now: ``loss_weights: [1, 0, 0, 0]`` (one dataset, one head, one batch) through the image cache.
Epochs of the two alternate (--repeat each) and the fastest of each counts, so a busy shared machine
slows both alike. Times what the loop times as an epoch (``train_one_epoch`` + ``evaluate``; the seed evaluated all four
tasks too), after a warm-up epoch.
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


def trainer(run: Path, raw: dict, seed_style: bool) -> Trainer:
    """A Trainer set up as a run would be, one warm-up epoch done."""
    tr = Trainer(train_config_from_dict(raw), run)
    if seed_style:   # the seed: every task loaded and run, weights 0 for all but gender
        tr.weights = dict(zip(TASKS, (1.0, 0.0, 0.0, 0.0)))
    tr._check_folder()
    tr._build()
    tr._resume_or_init()
    epoch(tr)
    return tr


def epoch(tr: Trainer) -> tuple[float, int]:
    """Seconds of one epoch as the loop times it (train + evaluate on val and test) and the training images it used."""
    tr.state.step, tr.state.meters = 0, {}
    t0 = time.perf_counter()
    meters = tr.train_one_epoch(StopRequest())
    tr.evaluate("val")
    tr.evaluate("test")
    return time.perf_counter() - t0, int(sum(m.s["n"] for m in meters.values()))


def main(argv: list[str] | None = None) -> list[str]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=3, help="epochs of each, interleaved; the fastest counts")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench_epoch_") as tmp:
        data = Path(tmp) / "data"
        write_study_data(data, n_per_class=args.steps * args.batch)
        base = {"dataset": "CVPR_16_ChaLearn", "image_size": args.size, "batch_size": args.batch,
                "epoch": 2, "steps_per_epoch": args.steps, "data": {"root": str(data)}}
        seed = trainer(Path(tmp) / "seed", {**base, "loss_weights": [1, 1, 1, 1], "data_cache": "off"}, True)
        now = trainer(Path(tmp) / "now", {**base, "loss_weights": [1, 0, 0, 0], "data_cache": "on"}, False)
        runs = [(epoch(seed), epoch(now)) for _ in range(args.repeat)]   # interleaved: both see the same load
        (seed_s, seed_n), (now_s, now_n) = min(r[0] for r in runs), min(r[1] for r in runs)
    line = figure(2, f"single-task epoch vs seed-style 4-task epoch ({args.steps} steps, {args.size} px, "
                     f"batch {args.batch})", seed_s / now_s, 3.5,
                  f"now {now_s:.2f} s ({now_n / now_s:.1f} gender img/s) vs seed style {seed_s:.2f} s "
                  f"({seed_n} images through the trunk for {now_n} that count)")
    print(line, flush=True)
    return [line]


if __name__ == "__main__":
    main()

"""Every benchmark of the performance issue, in one run. Not part of the test suite.

    .venv/bin/python bench/run_all.py [--quick]

Prints each figure as a ratio measured side by side in this run against a baseline in the seed's
style, with the absolute numbers, then the machine they came from; paste the block into BENCHMARKS.md.
Figure 5 (a 240-run grid on local SLURM) runs if ``bench/bench_launch.py`` exists; figure 6 is
bench_collect.py (10,000 run folders; 2,000 with --quick); figure 7 is bench_worker.py (local runs in one
worker process against a process each); figure 8 is bench_optim.py (the fused optimiser step).
"""
from __future__ import annotations

import argparse
import datetime as dt
import subprocess
import sys
import time
from pathlib import Path

import bench_checkpoint
import bench_data
import bench_epoch
import bench_optim
import bench_train
import bench_worker
from common import machine

HERE = Path(__file__).resolve().parent


def script(name: str, *args: str) -> None:
    """Run another bench script as its own process (its own imports and threads)."""
    subprocess.run([sys.executable, str(HERE / name), *args], check=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes: a smoke run, not figures to keep")
    args = ap.parse_args()
    quick = args.quick
    t0 = time.perf_counter()
    print(f"# {dt.date.today()} on {machine()}", flush=True)
    bench_data.main(["--images", "128" if quick else "512"])
    bench_epoch.main(["--steps", "3" if quick else "6"])
    bench_train.main(["--steps", "2" if quick else "4"])
    bench_checkpoint.main(["--steps", "6" if quick else "20"])
    if (HERE / "bench_launch.py").exists():
        script("bench_launch.py")
    else:
        print("[5] 240-run grid on local SLURM: bench/bench_launch.py not present, skipped", flush=True)
    print("[6] mtl-collect over run folders:", flush=True)
    script("bench_collect.py", "--runs", "2000" if quick else "10000")
    bench_worker.main(["--runs", "3" if quick else "7"])
    bench_optim.main(["--steps", "5" if quick else "20"])
    print(f"# all figures in {time.perf_counter() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()

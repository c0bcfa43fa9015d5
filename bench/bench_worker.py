"""Figure 7: local runs (--debug, cluster local) in one `mtl-train --worker` process against one process per
run (how mtl-launch ran them before), measured side by side on the same debug-grid runs.

    .venv/bin/python bench/bench_worker.py [--runs N]

Both arms train the same N runs of the debug grid (synthetic data, the `debug:` overrides of
experiments.yaml) into fresh folders; the per-process arm uses RunJob.train (a `python -m
mtl_cluster.train` per run, as a Slurm job does), the worker arm LocalWorker. The worker saves a torch import
and a synthetic draw per run; the results are byte-identical (tests/test_launch_local.py).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import figure  # noqa: E402

from mtl_cluster.launch.study import load_experiments  # noqa: E402
from mtl_cluster.launch.grid import expand  # noqa: E402
from mtl_cluster.launch.submit import LocalWorker, RunJob, _job_config  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7, help="debug-grid runs per arm (no fine-tunes: they need parents)")
    args = ap.parse_args(argv)
    exps = load_experiments(REPO / "experiments.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        times = {}
        for arm in ("per-process", "worker"):
            specs = [s for s in expand(exps, Path(tmp) / arm, debug=True) if s.init_run_dir is None][: args.runs]
            worker = LocalWorker()
            t0 = time.perf_counter()
            try:
                for s in specs:
                    job = RunJob(_job_config(s), str(s.run_dir))
                    rc, last = job.train(echo=False) if arm == "per-process" else worker.train(job.config, job.run_dir)
                    assert rc == 0, last
            finally:
                worker.close()
            times[arm] = time.perf_counter() - t0
        n = len(specs)
        print(figure(7, f"{n} debug-grid runs here, one worker process vs one process per run",
                     times["per-process"] / times["worker"], 1.3,
                     f"per-process {times['per-process']:.1f} s ({times['per-process'] / n:.1f} s a run), "
                     f"worker {times['worker']:.1f} s ({times['worker'] / n:.1f} s a run)"), flush=True)


if __name__ == "__main__":
    main()

"""Submitting a 240-run grid to the local Slurm: mtl-launch's job arrays against one sbatch per run.
Not part of the test suite; needs the local Slurm (scripts/slurm_local.sh start).

    .venv/bin/python bench/bench_launch.py [--seeds 15]

The grid is the repo's experiments.yaml without its last fine-tune row (16 experiments, the seed's table
minus one age variant) x ``--seeds`` seeds = 240 runs. Both sides submit with ``--begin=now+1hour`` so
nothing starts, then everything is cancelled:
  * mtl-launch: the real launcher (plan, jobs/ record, submitit pickles, one sbatch per array: one per
    resource group, dependency set and array chunk);
  * baseline: what the hand-edited workflow did, one sbatch script per run written and submitted
    (fine-tunes with ``--dependency=afterok`` on their pretraining job).
Prints both sbatch counts and wall times, and their ratios.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from mtl_cluster.cli.launch import launch_main  # noqa: E402
from mtl_cluster.launch.study import load_experiments  # noqa: E402
from mtl_cluster.launch.grid import expand  # noqa: E402
from mtl_cluster.launch.ledger import latest_jobs  # noqa: E402

HOLD = "now+1hour"


def study(tmp: Path, seeds: int) -> tuple[Path, list[str]]:
    """The repo's study with ``seeds`` seeds and a 'bench' profile whose jobs wait an hour to start."""
    raw = yaml.safe_load((REPO / "experiments.yaml").read_text())
    raw["grid"] = {"seed": list(range(seeds))}
    prof = dict(raw["clusters"]["test"])
    prof["additional"] = {"begin": HOLD}
    raw["clusters"]["bench"] = prof
    path = tmp / "experiments.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    only = [e.get("id") or e["name"] for e in raw["experiments"][:-1]]
    return path, only


def cancel(job_ids: set[str]) -> None:
    for i in range(0, len(job_ids), 200):
        subprocess.run(["scancel", *sorted(job_ids)[i:i + 200]], capture_output=True, timeout=120)


def bench_launcher(path: Path, only: list[str], tmp: Path) -> tuple[int, float, int, set[str]]:
    args = [str(path), "--cluster", "bench", "--only", *only, "--no-preflight", "--results", str(tmp / "results"),
            "--jobs-dir", str(tmp / "jobs"), "--logs-dir", str(tmp / "logs")]
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()) as err:
        rc = launch_main(args)
    seconds = time.perf_counter() - t0
    if rc != 0:
        raise SystemExit(f"mtl-launch failed: {err.getvalue().strip()}")
    jobs = latest_jobs(tmp / "jobs")
    arrays = {j.job_id.split("_")[0] for j in jobs.values()}
    return len(arrays), seconds, len(jobs), arrays


def bench_baseline(path: Path, only: list[str], tmp: Path) -> tuple[int, float, set[str]]:
    """One hand-written-style sbatch script per run, submitted one by one."""
    exps = load_experiments(path)
    prof = exps.cluster("bench")
    runs = expand(exps, tmp / "results", only=only)
    folder = tmp / "scripts"
    folder.mkdir(parents=True)
    job_of: dict[Path, str] = {}
    t0 = time.perf_counter()
    for n, spec in enumerate(runs):
        lines = ["#!/bin/bash", f"#SBATCH --job-name={spec.name}", f"#SBATCH --partition={prof.partition}",
                 f"#SBATCH --gres={prof.gres}", f"#SBATCH --cpus-per-task={prof.cpus_per_task}",
                 f"#SBATCH --mem={int(prof.mem_gb)}G", f"#SBATCH --time={prof.timeout_min}",
                 f"#SBATCH --begin={HOLD}", f"#SBATCH --output={folder}/{n}.out", *prof.setup,
                 " ".join([shlex.quote(sys.executable), "-m", "mtl_cluster.train", "--run-dir",
                           shlex.quote(str(spec.run_dir))] + [f"--set {k}={shlex.quote(str(v))}" for k, v in
                                                              (("seed", spec.config.seed),
                                                               ("loss_weights", list(spec.config.loss_weights)))])]
        script = folder / f"run_{n}.sh"
        script.write_text("\n".join(lines) + "\n")
        cmd = ["sbatch", "--parsable"]
        if spec.init_run_dir is not None:
            cmd.append(f"--dependency=afterok:{job_of[spec.init_run_dir]}")
        res = subprocess.run([*cmd, str(script)], capture_output=True, text=True, timeout=60, check=True)
        job_of[spec.run_dir] = res.stdout.strip().split(";")[0]
    return len(runs), time.perf_counter() - t0, set(job_of.values())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=15)
    args = p.parse_args()
    try:
        up = subprocess.run(["sinfo", "-h"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        up = False
    if not up:
        print("[5] 240-run grid on local SLURM: not measured (no Slurm answers here; "
              "start it with scripts/slurm_local.sh start)")
        return
    with tempfile.TemporaryDirectory(prefix="mtl-bench-launch-") as tmp_s:
        tmp = Path(tmp_s)
        path, only = study(tmp, args.seeds)
        arrays: set[str] = set()
        base_jobs: set[str] = set()
        try:
            calls, secs, runs, arrays = bench_launcher(path, only, tmp / "ours")
            base_calls, base_secs, base_jobs = bench_baseline(path, only, tmp / "base")
        finally:
            cancel(arrays | base_jobs)
    version = subprocess.run(["sinfo", "--version"], capture_output=True, text=True).stdout.strip()
    print(f"[5] {runs}-run grid ({len(only)} experiments x {args.seeds} seeds) on local {version}: "
          f"{base_calls / calls:.1f}x fewer sbatch calls, {base_secs / secs:.1f}x less time; mtl-launch {calls} "
          f"sbatch in {secs:.2f} s (job arrays, fine-tunes aftercorr) vs one sbatch per run {base_calls} in "
          f"{base_secs:.2f} s", flush=True)


if __name__ == "__main__":
    main()

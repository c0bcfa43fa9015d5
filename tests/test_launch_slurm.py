"""mtl-launch against the REAL local Slurm (scripts/slurm_local.sh start): the debug grid as arrays with
dependencies and an idempotent relaunch. Requeue, preemption, kills and the other faults are in
test_faults.py (the fault matrix).
"""
from __future__ import annotations

from pathlib import Path

import pytest

from mtl_cluster.cli.launch import launch_main
from mtl_cluster.cli.status import status_main
from mtl_cluster.launch.ledger import latest_jobs
from slurmkit import REPO, all_completed, dirs, require_cluster, sacct, specs, wait

pytestmark = pytest.mark.slurm


@pytest.fixture(scope="module", autouse=True)
def cluster() -> None:
    require_cluster()


def _sbatch_scripts(yaml_file: Path, tmp: Path) -> int:
    """How many sbatch calls the dry run plans for the debug grid on the test cluster."""
    from contextlib import redirect_stdout
    from io import StringIO
    buf = StringIO()
    with redirect_stdout(buf):
        assert launch_main([str(yaml_file), "--debug", "--cluster", "test", "--dry-run", "--no-preflight",
                            *dirs(tmp)]) == 0
    return buf.getvalue().count("# ---- sbatch script ")


def test_debug_grid_as_arrays_then_nothing_then_status(tmp_path, capsys):
    """The repo's debug grid on the test cluster: arrays, fine-tunes after their pretraining, idempotent."""
    yaml_file = REPO / "experiments.yaml"
    args = [str(yaml_file), "--debug", "--cluster", "test", *dirs(tmp_path)]
    assert launch_main(args) == 0
    out = capsys.readouterr()
    assert "submitted array 1/" in out.err and "afterok:" in out.err, out.err
    runs = specs(yaml_file, tmp_path, debug=True)
    assert len(runs) == 17
    wait(lambda: all_completed(runs), 300, "the debug grid to complete")

    jobs = latest_jobs(tmp_path / "jobs")
    planned = _sbatch_scripts(yaml_file, tmp_path / "dry")
    assert len({j.job_id.split("_")[0] for j in jobs.values()}) == planned < len(runs)   # one sbatch per array
    # every fine-tune started after its pretraining run ended
    for s in runs:
        if s.init_run_dir is None:
            continue
        child, parent = jobs[str(s.run_dir)].job_id, jobs[str(s.init_run_dir)].job_id
        c_start = sacct(child)[child][1]
        p_end = sacct(parent)[parent][2]
        assert c_start >= p_end, (s.label, c_start, p_end)
        assert "initialised trunk" in (s.run_dir / "log.txt").read_text()

    assert launch_main(args) == 0                                                   # second launch
    out = capsys.readouterr()
    assert "nothing to submit" in out.out and "submitted" not in out.err
    assert len(list((tmp_path / "jobs").glob("*.json"))) == 1

    assert status_main([str(yaml_file), "--debug", *dirs(tmp_path)[:4]]) == 0
    table = capsys.readouterr().out
    assert "17 completed" in table and "COMPLETED" in table

    # mtl-collect --cost sets Slurm's bill beside the runs' own figures: each job held one (fake) GPU, which
    # the CPU trainer never used, so the runs' own GPU-hours are 0 and sacct's are each job's elapsed time
    import json

    from mtl_cluster.launch.accounting import gpu_seconds
    from mtl_cluster.cli.collect import collect_main
    assert collect_main([str(tmp_path / "results"), "--cost", "--format", "json", "--no-image-tests"]) == 0
    report = json.loads(capsys.readouterr().out)
    cells = [r["cells"] for s in report["cost"]["sections"] for r in s["rows"]]
    assert cells and all(c["gpu_hours"]["mean"] == 0 and c["sacct_gpu_hours"]["mean"] > 0 for c in cells), cells
    assert report["cost"]["total"]["sacct_runs"] == 17
    billed = gpu_seconds(jobs[str(s.run_dir)].job_id for s in runs)
    assert billed is not None and len(billed) == 17
    assert report["cost"]["total"]["sacct_gpu_hours"] == pytest.approx(sum(billed.values()) / 3600, abs=1e-5)

    # sacct's CPU use stands beside the runs' own recorded peaks. Its MaxRSS does only for a job that lived past
    # a JobAcctGatherFrequency (10 s here) sample: these ~10 s jobs mostly have none (fault row 11 checks it)
    assert all(c["host_peak_mib"]["max"] > 200 and 0 < c["sacct_cpu_used"]["mean"] < 250 for c in cells), cells
    assert all(c["sacct_rss_mib"]["max"] > 200 for c in cells if "sacct_rss_mib" in c), cells

    # --right-size from these runs sees the limits they ran under (the test profile's 10 min and 2 GB); asked to
    # write them into the study, it does not: they are --debug runs, which say nothing of the full runs' needs
    study = tmp_path / "study.yaml"
    study.write_text(yaml_file.read_text())
    assert collect_main([str(tmp_path / "results"), "--right-size", "--write-resources", str(study),
                         "--no-image-tests"]) == 0
    lines = capsys.readouterr().out.splitlines()
    proposals = [x for x in lines if ": timeout_min " in x and " -> " in x]
    assert proposals and all(": timeout_min 10 -> 10 (" in x and "; mem_gb 2 -> " in x for x in proposals), lines
    assert any(x.startswith("note: ") and "a run of the --debug/--demo grid" in x for x in lines), lines
    assert f"{study}: no row is a full run of one of its experiments; nothing written" in lines, lines
    assert study.read_text() == yaml_file.read_text()


NEVER_YAML = """\
defaults:
  dataset: synthetic
  image_size: 64
  batch_size: 8
  device: cpu
  epoch: 1
  steps_per_epoch: 4
  data: {synthetic_train_size: 16, synthetic_eval_size: 8}
experiments:
  - name: AlexNet-Gender_Age
    id: pre
    loss_weights: [1, 0, 0, 1]
  - name: AlexNet-Smile
    id: ft
    loss_weights: [0, 1, 0, 0]
    init_from: pre
    load_IMDB_WIKI_pretrained_model: true
clusters:
  test:
    executor: slurm
    partition: gpu
    cpus_per_task: 1
    mem_gb: 1
    timeout_min: 5
    additional: {kill-on-invalid-dep: "no"}   # the launcher's default is yes (Slurm then cancels such a job)
"""


def _squeue(name: str) -> list[tuple[str, str]]:
    import subprocess
    res = subprocess.run(["squeue", "-h", "-r", "-o", "%i|%r|%j"], capture_output=True, text=True, timeout=15)
    return [(line.split("|")[0], line.split("|")[1]) for line in res.stdout.splitlines()
            if line.split("|")[2].startswith(f"mtl:{name}")]


def test_a_job_that_can_never_start_is_replaced(tmp_path, capsys):
    """With ``kill-on-invalid-dep: no`` (the launcher sets yes unless a profile says otherwise), a fine-tune queued
    after its pretraining, whose pretraining job is then cancelled, waits forever in squeue
    (DependencyNeverSatisfied). The next launch cancels that job and submits both runs again: squeue never holds
    two jobs for one run, and both complete."""
    import subprocess
    yaml_file = tmp_path / "neverstudy.yaml"
    yaml_file.write_text(NEVER_YAML)
    args = [str(yaml_file), "--cluster", "test", *dirs(tmp_path)]
    assert launch_main(args) == 0
    pre, ft = specs(yaml_file, tmp_path)
    jobs = latest_jobs(tmp_path / "jobs")
    parent, child = jobs[str(pre.run_dir)].job_id, jobs[str(ft.run_dir)].job_id
    subprocess.run(["scancel", parent.split("_")[0]], check=True, timeout=30)
    wait(lambda: _squeue("neverstudy") == [(child, "DependencyNeverSatisfied")], 120,
         "the fine-tune's job to be left waiting on a dependency that can never be satisfied")
    capsys.readouterr()
    assert status_main([str(yaml_file), *dirs(tmp_path)[:4]]) == 0
    assert "can never start" in capsys.readouterr().out
    assert launch_main(args) == 0
    out = capsys.readouterr()
    assert f"cancelled 1 job(s) that could never start (the job they followed failed or was cancelled): {child}" \
        in out.err, out.err
    assert "submitted 2 runs" in out.out, out.out
    queued = _squeue("neverstudy")
    assert child not in {j for j, _ in queued} and len(queued) <= 2, queued
    wait(lambda: all_completed([pre, ft]), 300, "both runs to complete")
    assert launch_main(args) == 0 and "nothing to submit" in capsys.readouterr().out

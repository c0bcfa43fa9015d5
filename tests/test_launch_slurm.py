"""mtl-launch against the REAL local Slurm (scripts/slurm_local.sh start): the debug grid as arrays with
dependencies and an idempotent relaunch. Requeue, preemption, kills and the other faults are in
test_faults.py (the fault matrix).
"""
from __future__ import annotations

from pathlib import Path

import pytest

from mtl_cluster.cli_launch import launch_main, status_main
from mtl_cluster.ledger import latest_jobs
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

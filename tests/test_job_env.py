"""The job's trainer gets as many torch threads as SLURM gave the task, unless the user set them."""
from __future__ import annotations

from mtl_cluster.launch import child_env


def test_threads_follow_slurm_cpus(monkeypatch) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "4")
    assert child_env()["OMP_NUM_THREADS"] == "4"


def test_user_choice_wins_and_no_slurm_means_no_change(monkeypatch) -> None:
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "4")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert child_env()["OMP_NUM_THREADS"] == "1"
    monkeypatch.delenv("SLURM_CPUS_PER_TASK")
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert "OMP_NUM_THREADS" not in child_env()

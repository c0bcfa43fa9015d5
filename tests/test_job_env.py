"""The job's trainer gets as many torch threads as SLURM gave the task, unless the user set them; local workers
share the cores."""
from __future__ import annotations

from mtl_cluster.launch.submit import child_env, worker_threads


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


def test_local_workers_share_the_cores_and_never_oversubscribe() -> None:
    assert worker_threads(1, "2", 2) is None                  # one worker: the user's (or torch's) choice
    assert worker_threads(2, None, 2) == 1                     # the default: one thread each
    assert worker_threads(2, "2", 2) == 1                      # the user's 2 on 2 cores, shared by 2 workers
    assert worker_threads(2, "4", 16) == 4                     # fits: the user's value
    assert worker_threads(4, "8", 16) == 4                     # capped at the cores divided among the workers
    assert worker_threads(3, "2", 2) == 1                      # more workers than cores: still one each
    assert worker_threads(2, "lots", 16) == 1 and worker_threads(2, "0", 16) == 1

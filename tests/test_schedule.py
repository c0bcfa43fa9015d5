"""The learning-rate schedule of a section's arms (issue 21): under the study's default (``cosine``) a multitask
and a single-task row get the same rate at every optimizer step, whatever tasks are active; a run interrupted
mid-epoch resumes to the same rates and metrics; ``plateau`` uses the seed's threshold and heads its section."""
from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from conftest import REPO, TINY
from mtl_cluster.config import load_train_config
from mtl_cluster.errors import Interrupted
from mtl_cluster.launch.study import load_experiments
from mtl_cluster.rundir import joint_epoch
from mtl_cluster.tasks import TASKS
from mtl_cluster.train.loop import Trainer, run_training
from mtl_cluster.train.schedule import PLATEAU_THRESHOLD, lr_factor

COSINE = [*TINY, "epoch=2", "steps_per_epoch=4", "lr_scheduler=cosine", "lr_rate=0.01"]


def _rates(run: Path, *overrides: str) -> list[tuple[int, int, float]]:
    """(epoch, step, learning rate) of every optimizer step of one run."""
    seen: list[tuple[int, int, float]] = []

    def progress(event: str, info: dict) -> None:
        if event == "step":
            seen.append((info["epoch"], info["step"], info["lr"]))

    run_training(load_train_config(None, [*COSINE, *overrides]), run, progress=progress, handle_signals=False)
    return seen


def test_the_default_schedule_is_the_same_in_every_arm_at_every_step(tmp_path: Path) -> None:
    multi = _rates(tmp_path / "mtl", "loss_weights=[1,1,1,1]")
    single = _rates(tmp_path / "stl", "loss_weights=[0,1,0,0]")
    steps = 2 * 4
    assert len(multi) == len(single) == steps
    assert multi == single                                 # equal at every step, bit for bit
    assert multi[0][2] == pytest.approx(0.01) and multi[-1][2] < 0.001   # half a cosine over the budget
    assert [r for _, _, r in multi] == sorted((r for _, _, r in multi), reverse=True)
    assert [r for _, _, r in multi] == [0.01 * lr_factor("cosine", k, steps) for k in range(steps)]
    # the predictions of the other --select rules' epochs are kept beside each task's selected ones
    preds = json.loads((tmp_path / "mtl" / "predictions.json").read_text())
    vals = [json.loads(x) for x in (tmp_path / "mtl" / "metrics.jsonl").read_text().splitlines()]
    joint = joint_epoch([r for r in vals if r["split"] == "val"], list(TASKS))
    assert {p["epoch"] for p in preds["by_rule"]["final"].values()} == {2}
    assert {p["epoch"] for p in preds["by_rule"]["joint"].values()} == {joint}
    assert set(preds["by_rule"]["final"]) == set(TASKS) and len(preds["by_rule"]["final"]["age"]["ae"]) == 24


def test_the_study_defaults_to_a_step_count_schedule_and_one_parent_per_fine_tuned_section() -> None:
    """experiments.yaml: the schedule of every row depends on the step count only, and every fine-tuned row
    starts from the same parent, the IMDB-WIKI gender+age pretraining (as the seed's code did)."""
    exps = load_experiments(REPO / "experiments.yaml")
    assert exps.defaults["lr_scheduler"] == "cosine"
    assert all("lr_scheduler" not in e.overrides for e in exps.experiments)
    tuned = [e for e in exps.experiments if e.init_from is not None]
    assert len(tuned) == 7 and {e.init_from for e in tuned} == {"IMDB-WIKI-AlexNet-Gender_Age"}


def test_a_cosine_run_interrupted_mid_epoch_resumes_to_the_same_rates_and_metrics(tmp_path: Path) -> None:
    whole = _rates(tmp_path / "whole")

    def usr2_mid_epoch_2(event: str, info: dict) -> None:
        if event == "step" and (info["epoch"], info["step"]) == (2, 1):
            os.kill(os.getpid(), signal.SIGUSR2)

    with pytest.raises(Interrupted):
        run_training(load_train_config(None, COSINE), tmp_path / "cut", progress=usr2_mid_epoch_2)
    rest = _rates(tmp_path / "cut")
    assert rest == whole[len(whole) - len(rest):] and rest[0][:2] == (2, 2)
    for name in ("metrics.jsonl", "summary.json", "predictions.json"):
        assert (tmp_path / "cut" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes(), name


def test_plateau_uses_the_seeds_threshold(tmp_path: Path) -> None:
    trainer = Trainer(load_train_config(None, [*TINY, "lr_scheduler=plateau"]), tmp_path / "run")
    trainer._build()
    assert PLATEAU_THRESHOLD == 1e-5 and trainer.sched.threshold == 1e-5 and trainer.sched.patience == 10

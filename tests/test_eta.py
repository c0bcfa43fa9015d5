"""The study ETA (mtl_cluster/launch/eta.py) from hand-written run folders, and a run's ETA from its measured
step time before its first epoch ends (status.eta_seconds). The real thing on the local Slurm is in
tests/test_queue_slurm.py::test_eta_column_and_study_eta_for_a_running_study."""
from __future__ import annotations

import json
import time
from pathlib import Path

from mtl_cluster.cli.ui import study_eta_line
from mtl_cluster.launch.eta import study_eta
from mtl_cluster.launch.grid import expand
from mtl_cluster.launch.status import RunStatus, eta_seconds
from mtl_cluster.launch.study import load_experiments
from mtl_cluster.states import State

STUDY = """\
defaults: {dataset: synthetic, epoch: 3, steps_per_epoch: 10}
experiments:
  - {name: AlexNet-Gender_Age, id: pre, loss_weights: [1, 0, 0, 1]}
  - {name: AlexNet-Smile, id: ft, loss_weights: [0, 1, 0, 0], init_from: pre, load_IMDB_WIKI_pretrained_model: true}
  - {name: AlexNet-Gender, id: other, loss_weights: [1, 0, 0, 0]}
grid: {seed: [0, 1]}
"""
NOW = 1_800_000_000.0


def _specs(tmp: Path):
    (tmp / "s.yaml").write_text(STUDY)
    return {(s.name, s.config.seed): s for s in expand(load_experiments(tmp / "s.yaml"), tmp / "results")}


def _timed(run_dir: Path, seconds: float, epochs: int) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "timings.jsonl").write_text("".join(json.dumps({"epoch": e + 1, "seconds": seconds}) + "\n"
                                                   for e in range(epochs)))


def test_queued_runs_wait_for_a_slot_of_their_array_and_for_their_parent(tmp_path) -> None:
    """Array 10 (other, 2 seeds) runs 1 at once: seed 0 has 200 s left, seed 1 waits for its slot and takes
    3 x 100 s (its experiment's epoch time) -> ends at +500. Array 20: pre seed 0 runs (60 s left); ft seed 0
    (array 30) follows it: starts at +60 and takes 3 x 100 s (no ft epoch timed yet: every run's mean, rough),
    ending at +360."""
    specs = _specs(tmp_path)
    other0, other1 = specs[("other", 0)], specs[("other", 1)]
    pre0, ft0 = specs[("pre", 0)], specs[("ft", 0)]
    _timed(other0.run_dir, 100.0, 1)
    _timed(pre0.run_dir, 0.0, 0)
    statuses = [
        RunStatus(pre0, State.RUNNING, epochs=3, job_id="20_0", eta_s=60.0),
        RunStatus(other0, State.RUNNING, epochs=3, epoch=1, job_id="10_0", eta_s=200.0),
        RunStatus(other1, State.QUEUED, epochs=3, job_id="10_1"),
        RunStatus(ft0, State.QUEUED, epochs=3, job_id="30_0"),
    ]
    eta = study_eta(statuses, {"10": 1, "30": 1}, now=NOW)
    assert (eta.finish, eta.running, eta.queued, eta.arrays, eta.rough) == (NOW + 500, 2, 2, 3, True)
    eta = study_eta(statuses[:3], {"10": 2}, now=NOW)          # throttle 2: seed 1 starts now, ends at +300
    assert eta.finish == NOW + 300 and not eta.rough
    line = study_eta_line(eta, now=NOW)
    assert line is not None and line.startswith(
        f"study ETA: the last run should end at {time.strftime('%H:%M', time.localtime(NOW + 300))} (in 5m00s): "
        f"2 running, 1 queued in 2 array(s), from measured epoch and step times"), line


def test_nothing_measured_yet_and_runs_without_a_job(tmp_path) -> None:
    specs = _specs(tmp_path)
    statuses = [RunStatus(specs[("other", 0)], State.QUEUED, epochs=3, job_id="10_0"),
                RunStatus(specs[("other", 1)], State.DIED, epochs=3)]
    eta = study_eta(statuses, {}, now=NOW)
    assert eta.finish is None and eta.not_counted == 1
    assert study_eta_line(eta, now=NOW) == ("study ETA: not known yet (no epoch or step of its runs timed): 0 running, "
                                            "1 queued in 1 array(s); 1 run(s) without a job not counted (mtl-launch "
                                            "submits them)")
    assert study_eta_line(study_eta([], {}, now=NOW)) is None


def test_a_short_runs_first_epoch_has_an_eta_from_its_step_time() -> None:
    """2 of 10 steps into epoch 1 of 3 at 0.5 s a step, status.json written 1 s ago: 28 steps x 0.5 - 1 = 13 s."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(NOW - 1))
    status = {"epoch": 0, "step": 2, "steps": 10, "step_seconds": 0.5, "attempts": 1, "updated_at": stamp}
    assert eta_seconds(status, [], 3, now=NOW) == (13.0, True)


def test_held_runs_and_what_waits_on_them_are_not_counted(tmp_path) -> None:
    """pre seed 0 is queued but held (scontrol hold: it starts when someone releases it) and ft seed 0 fine-tunes
    from it: neither has an end to reckon with, so the study ETA is the other run's, and the line says 2 held.
    With only held runs there is no figure, and the line says why."""
    specs = _specs(tmp_path)
    _timed(specs[("other", 0)].run_dir, 100.0, 1)
    statuses = [RunStatus(specs[("pre", 0)], State.QUEUED, epochs=3, job_id="20_0", reason="JobHeldUser"),
                RunStatus(specs[("ft", 0)], State.QUEUED, epochs=3, job_id="30_0", reason="Dependency"),
                RunStatus(specs[("other", 0)], State.RUNNING, epochs=3, epoch=1, job_id="10_0", eta_s=200.0)]
    eta = study_eta(statuses, {}, now=NOW)
    assert (eta.finish, eta.running, eta.queued, eta.held) == (NOW + 200, 1, 0, 2)
    line = study_eta_line(eta, now=NOW)
    assert line is not None and line.endswith("; 2 held run(s) not counted (they start once released: scontrol "
                                              "release <job>)"), line
    eta = study_eta(statuses[:2], {}, now=NOW)
    assert eta.finish is None and eta.held == 2
    assert study_eta_line(eta, now=NOW) == (
        "study ETA: not known yet (every queued run is held): 0 running, 0 queued in 2 array(s); 2 held run(s) not "
        "counted (they start once released: scontrol release <job>)")

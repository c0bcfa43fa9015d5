"""Every task learns clearly above chance on synthetic data on a CPU in a few minutes: the evidence
that model, data, losses and metrics fit together. Marked slow (about 3 minutes on 2 idle cores)."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import DEMO, run_cli, sets, train_cmd
from mtl_cluster.config import load_train_config
from mtl_cluster.train.data.synthetic import synthetic_sample

pytestmark = pytest.mark.slow


def _final_val(run: Path, *overrides: str) -> dict:
    res = run_cli(train_cmd(run, *sets(*overrides)), timeout=1200)
    assert res.returncode == 0, res.stderr[-2000:]
    return json.loads((run / "summary.json").read_text())["final"]["val"]


def test_demo_multitask_run_learns_gender_smile_emotion(tmp_path: Path) -> None:
    """The embedded default itself (600 steps of 4 x 32 images, lr 0.01)."""
    val = _final_val(tmp_path / "mtl")
    assert val["gender_acc"] >= 80, val          # chance 50
    assert val["smile_acc"] >= 80, val           # chance 50
    assert val["emotion_acc"] >= 35, val         # chance 14.3


def test_age_learns_far_below_the_mean_predictor(tmp_path: Path) -> None:
    """Age is the slowest task in the multitask run (it lags the others by hundreds of steps), so it is
    shown on its own: 600 single-task steps."""
    val = _final_val(tmp_path / "age", "loss_weights=[0,0,0,1]", "name=AlexNet-Age", "epoch=4",
                     "steps_per_epoch=150")
    cfg = load_train_config(None)
    _, train_labels = synthetic_sample(cfg.seed, cfg.data.synthetic_train_size, cfg.image_size, "train")
    _, eval_labels = synthetic_sample(cfg.seed, cfg.data.synthetic_eval_size, cfg.image_size, "val")
    mean_predictor_mae = float(np.abs(eval_labels["age"] - train_labels["age"].mean()).mean())
    assert val["age_mae"] <= 0.5 * mean_predictor_mae, (val, mean_predictor_mae)
    # The seed's MAE (the argmax year) too. Exact-year accuracy is not asserted: on 128 images a regressor
    # with MAE ~8 hits the exact year 2-6 times (chance 1.3), too few to tell from chance at a fixed bar
    # (CI once saw 3 of 128 against a bar of 4).
    assert val["age_mae_argmax"] <= 0.6 * mean_predictor_mae, (val, mean_predictor_mae)


def test_the_demo_learns(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """scripts/demo.sh's grid (`mtl-launch --demo`) at seed 0, its first section, through the launcher and the
    collector: each single-task row is clearly above chance at the thresholds of the issue (gender and smile
    >= 75%, emotion >= 2x chance, age MAE <= 0.6x the mean predictor's), and so are the multitask row's gender
    and emotion. The multitask row's smile and age are not asserted: within the demo's 300 steps they stay
    near chance (BENCHMARKS.md, "The demo": what it reaches, and why that part of the issue is not done)."""
    from mtl_cluster.cli_collect import collect_main
    from mtl_cluster.cli_launch import launch_main
    from mtl_cluster.experiments import load_experiments
    from mtl_cluster.grid import expand
    from mtl_cluster.train.data import synthetic_seed

    repo = Path(__file__).resolve().parents[1]
    only = ["AlexNet-Gender_Smile_Emotion_Age", "AlexNet-Gender", "AlexNet-Smile", "AlexNet-Emotion", "AlexNet-Age"]
    dirs = ["--results", str(tmp_path / "results"), "--jobs-dir", str(tmp_path / "jobs"),
            "--logs-dir", str(tmp_path / "logs")]
    t0 = time.monotonic()
    assert launch_main([str(repo / "experiments.yaml"), "--demo", "--only", *only, "--set", "seed=0",
                        "--parallel", "2", *dirs]) == 0
    seconds = time.monotonic() - t0
    assert "5 of 5 runs completed" in capsys.readouterr().out
    rates = [json.loads(line)["train_images_per_s"] for f in (tmp_path / "results").rglob("timings.jsonl")
             for line in f.read_text().splitlines() if line.strip()]
    assert collect_main([str(tmp_path / "results"), "--format", "json", "--no-image-tests"]) == 0
    report = json.loads(capsys.readouterr().out)
    rows = {r["label"]: {k: c["mean"] for k, c in r["cells"].items()}
            for s in report["sections"] for r in s["rows"] if r["kind"] == "result"}

    spec = next(s for s in expand(load_experiments(repo / "experiments.yaml"), tmp_path, demo=True,
                                  only=["AlexNet-Age"], overrides=["seed=0"]))
    cfg = spec.config
    _, train = synthetic_sample(synthetic_seed(cfg), cfg.data.synthetic_train_size, cfg.image_size, "train",
                                (), cfg.data.synthetic_cues)
    _, test = synthetic_sample(synthetic_seed(cfg), cfg.data.synthetic_eval_size, cfg.image_size, "test",
                               (), cfg.data.synthetic_cues)
    mean_predictor_mae = float(np.abs(test["age"] - train["age"].mean()).mean())
    mtl = rows["AlexNet-Gender_Smile_Emotion_Age"]
    DEMO.append(f"5 demo runs (8 task streams x 300 steps x 16 images), 2 workers: {seconds:.0f} s; "
                f"{sum(rates) / len(rates):.0f} training images/s per worker (mean over epochs)")
    DEMO.append(f"demo, seed 0, single-task rows: gender {rows['AlexNet-Gender']['gender_acc']:.1f}%, smile "
                f"{rows['AlexNet-Smile']['smile_acc']:.1f}%, emotion {rows['AlexNet-Emotion']['emotion_acc']:.1f}%, "
                f"age MAE {rows['AlexNet-Age']['age_mae']:.1f} (mean predictor {mean_predictor_mae:.1f}); multitask "
                f"row: gender {mtl['gender_acc']:.1f}%, smile {mtl['smile_acc']:.1f}%, emotion "
                f"{mtl['emotion_acc']:.1f}%, age MAE {mtl['age_mae']:.1f}")
    print(DEMO[-1])
    for row in ("AlexNet-Gender", "AlexNet-Gender_Smile_Emotion_Age"):
        assert rows[row]["gender_acc"] >= 75, rows[row]                   # chance 50
    assert rows["AlexNet-Smile"]["smile_acc"] >= 75, rows                 # chance 50
    for row in ("AlexNet-Emotion", "AlexNet-Gender_Smile_Emotion_Age"):
        assert rows[row]["emotion_acc"] >= 2 * 100 / 7, rows[row]         # chance 14.3
    assert rows["AlexNet-Age"]["age_mae"] <= 0.6 * mean_predictor_mae, (rows, mean_predictor_mae)

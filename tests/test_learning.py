"""Every task learns clearly above chance on synthetic data on a CPU in a few minutes: the evidence
that model, data, losses and metrics fit together, through the launcher and the collector. Marked slow
(about 2 minutes on 2 cores). The faces data's own learnability (the default `mtl-train`, 600 SGD steps)
was a test of its own until the demo's grid covered every task in a four-task and in single-task rows;
tests/test_known_answer.py still trains on the faces cues (gender and smile)."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import DEMO

from mtl_cluster.train.data.synthetic import synthetic_sample

pytestmark = pytest.mark.slow


def test_the_demo_learns(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """scripts/demo.sh's grid (`mtl-launch --demo`) at seed 0, its first section (the four-task row and the four
    single-task rows), through the launcher and the collector: every task of every row is clearly above
    chance at the thresholds of the issue (gender and smile >= 75%, emotion >= 2x chance, age MAE <= 0.6x the
    mean predictor's, read on the expected age; the four-task row's argmax age too), and the planted answer
    shows: the four-task row's age beats the single-task row's."""
    from mtl_cluster.cli.collect import collect_main
    from mtl_cluster.cli.launch import launch_main
    from mtl_cluster.launch.study import load_experiments
    from mtl_cluster.launch.grid import expand
    from mtl_cluster.train.data import synthetic_seed

    repo = Path(__file__).resolve().parents[1]
    mtl = "AlexNet-Gender_Smile_Emotion_Age"
    single = {"gender": "AlexNet-Gender", "smile": "AlexNet-Smile", "emotion": "AlexNet-Emotion", "age": "AlexNet-Age"}
    dirs = ["--results", str(tmp_path / "results"), "--jobs-dir", str(tmp_path / "jobs"),
            "--logs-dir", str(tmp_path / "logs")]
    t0 = time.monotonic()
    assert launch_main([str(repo / "experiments.yaml"), "--demo", "--only", mtl, *single.values(), "--set", "seed=0",
                        "--parallel", "2", *dirs]) == 0
    seconds = time.monotonic() - t0
    assert "5 of 5 runs completed" in capsys.readouterr().out
    rates = [json.loads(line)["train_images_per_s"] for f in (tmp_path / "results").rglob("timings.jsonl")
             for line in f.read_text().splitlines() if line.strip()]
    assert collect_main([str(tmp_path / "results"), "--format", "md", "--no-image-tests"]) == 0
    assert "Planted answer: in the runs with data.synthetic_shared = [age, gender, smile, emotion]" \
        in capsys.readouterr().out
    assert collect_main([str(tmp_path / "results"), "--format", "json", "--no-image-tests"]) == 0
    report = json.loads(capsys.readouterr().out)
    rows = {r["label"]: {k: c["mean"] for k, c in r["cells"].items()}
            for s in report["sections"] for r in s["rows"] if r["kind"] == "result"}

    spec = next(s for s in expand(load_experiments(repo / "experiments.yaml"), tmp_path, demo=True,
                                  only=["AlexNet-Age"], overrides=["seed=0"]))
    cfg = spec.config
    shared = tuple(cfg.data.synthetic_shared)
    _, train = synthetic_sample(synthetic_seed(cfg), cfg.data.synthetic_train_size, cfg.image_size, "train",
                                shared, cfg.data.synthetic_cues)
    _, test = synthetic_sample(synthetic_seed(cfg), cfg.data.synthetic_eval_size, cfg.image_size, "test",
                               shared, cfg.data.synthetic_cues)
    n_age = cfg.data.synthetic_task_sizes.get("age", cfg.data.synthetic_train_size)   # the data-poor age set
    mean_predictor_mae = float(np.abs(test["age"] - train["age"][:n_age].mean()).mean())
    steps = cfg.epoch * cfg.steps_per_epoch
    DEMO.append(f"5 demo runs (8 task streams x {steps} steps x {cfg.batch_size} images), 2 workers: {seconds:.0f} s; "
                f"{sum(rates) / len(rates):.0f} training images/s per worker (mean over epochs)")
    m = rows[mtl]
    DEMO.append(f"demo, seed 0, single-task rows: gender {rows[single['gender']]['gender_acc']:.1f}%, smile "
                f"{rows[single['smile']]['smile_acc']:.1f}%, emotion {rows[single['emotion']]['emotion_acc']:.1f}%, "
                f"age MAE {rows[single['age']]['age_mae']:.1f} (argmax {rows[single['age']]['age_mae_argmax']:.1f}; "
                f"mean predictor {mean_predictor_mae:.1f}); four-task row: gender {m['gender_acc']:.1f}%, smile "
                f"{m['smile_acc']:.1f}%, emotion {m['emotion_acc']:.1f}%, age MAE {m['age_mae']:.1f} (argmax "
                f"{m['age_mae_argmax']:.1f})")
    print(DEMO[-1])
    for row in (mtl, single["gender"]):
        assert rows[row]["gender_acc"] >= 75, rows[row]                   # chance 50
    for row in (mtl, single["smile"]):
        assert rows[row]["smile_acc"] >= 75, rows[row]                    # chance 50
    for row in (mtl, single["emotion"]):
        assert rows[row]["emotion_acc"] >= 2 * 100 / 7, rows[row]         # chance 14.3
    for row in (mtl, single["age"]):
        assert rows[row]["age_mae"] <= 0.6 * mean_predictor_mae, (rows[row], mean_predictor_mae)
    # The seed's argmax MAE clears the bar in the four-task row only: the single-task 100-class softmax is still
    # broad after the demo's 120 steps (BENCHMARKS.md, "The demo"; the longer demo clears it everywhere).
    assert m["age_mae_argmax"] <= 0.6 * mean_predictor_mae, (m, mean_predictor_mae)
    assert m["age_mae"] < rows[single["age"]]["age_mae"], rows            # the planted answer

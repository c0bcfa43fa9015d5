"""The training CLI on bad input: one line on stderr, exit 2, no traceback unless --traceback."""
from __future__ import annotations

from pathlib import Path

import re

import pytest

from mtl_cluster.cli.train import train_main
from conftest import run_cli, train_cmd


@pytest.mark.parametrize("override, needle", [
    ("loss_weights={gender: 1, beauty: 1}", "beauty: unknown task"),
    ("loss_weights=[1,-1,0,0]", "weights must be >= 0"),
    ("loss_weights=[0,0,0,0]", "all weights are 0"),
    ("batch_size=0", "batch_size: must be >= 1"),
    ("dataset=celebA", "dataset: unknown dataset"),
    ("epochs=3", "epochs: unknown key; valid keys:"),
])
def test_bad_config_one_line_exit_2(override: str, needle: str, tmp_path: Path, capsys) -> None:
    code = train_main(["--run-dir", str(tmp_path / "run"), "--set", override])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("mtl-train: error: ") and needle in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "run").exists()           # nothing written for a config that never ran


def test_traceback_flag_shows_the_stack(tmp_path: Path, capsys) -> None:
    code = train_main(["--run-dir", str(tmp_path / "run"), "--set", "batch_size=0", "--traceback"])
    assert code == 2 and "Traceback" in capsys.readouterr().err


def test_bad_yaml_file_names_file_and_line(tmp_path: Path, capsys) -> None:
    cfg = tmp_path / "run.yaml"
    cfg.write_text("epoch: 2\nloss_weights: [1, 0\n")
    assert train_main(["--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert re.search(r"run.yaml:\d+: invalid YAML", err) and err.count("\n") == 1


def test_print_config_shows_signature_and_defaults(capsys) -> None:
    assert train_main(["--print-config", "--set", "seed=3"]) == 0
    out = capsys.readouterr().out
    assert "signature:" in out and "seed: 3" in out and "dataset: synthetic" in out


def test_default_run_folder_follows_the_seed_layout(tmp_path: Path) -> None:
    res = run_cli(train_cmd(tmp_path / "unused", "--print-config"))
    assert res.returncode == 0
    from mtl_cluster.config import load_train_config
    from mtl_cluster.rundir import default_run_dir
    cfg = load_train_config(None, ["loss_weights=[1,0,0,0]", "name=AlexNet-Gender"])
    path = default_run_dir(Path("results"), cfg).as_posix()
    assert path.startswith("results/MTL_AlexNet_model/_gender_1_smile_0_emotion_0_age_0_synthetic/AlexNet-Gender_seed0_")


def test_hand_damaged_status_json_does_not_stop_a_resume(tmp_path: Path) -> None:
    """status.json is a report, not state: wrong types in it (a hand edit) must not crash the trainer."""
    from conftest import TINY, sets
    import json

    run = tmp_path / "run"
    assert run_cli(train_cmd(run, *sets(*TINY, "epoch=1"))).returncode == 0
    (run / "status.json").write_text(json.dumps({"state": "running", "attempts": "three", "epoch": [1]}))
    res = run_cli(train_cmd(run, *sets(*TINY, "epoch=1")))
    assert res.returncode == 0, res.stderr
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "completed" and status["attempts"] == 1


@pytest.mark.parametrize("tool", ["train", "launch", "status", "collect"])
@pytest.mark.parametrize("argv", [["--no-such-flag"], ["--set"], ["--results"]])
def test_command_line_mistakes_are_one_line_exit_2(tool: str, argv: list[str], capsys) -> None:
    """argparse's usage mistakes too: one line naming the problem and where help is, no usage block."""
    from mtl_cluster.cli.collect import collect_main
    from mtl_cluster.cli.launch import launch_main
    from mtl_cluster.cli.status import status_main

    main = {"train": train_main, "launch": launch_main, "status": status_main, "collect": collect_main}[tool]
    if tool == "collect" and argv == ["--set"]:
        argv = ["--format"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"mtl-{tool}: error: ") and f"(see mtl-{tool} --help)" in err, err


@pytest.mark.parametrize("text", ["name: 2024-01-01\n", "seed: 2024-01-01 10:00:00\n", "data: {root: 2024-01-01}\n"])
def test_a_yaml_date_in_a_config_file_is_one_line(text: str, tmp_path: Path, capsys) -> None:
    """YAML reads 2024-01-01 as a date: a type error in one line, exit 2 (it used to be 'internal error')."""
    cfg = tmp_path / "run.yaml"
    cfg.write_text(text)
    assert train_main(["--config", str(cfg), "--run-dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mtl-train: error: ") and "expected" in err and "date" in err, err
    assert err.count("\n") == 1 and "internal error" not in err


def test_nan_before_any_checkpoint_says_so(tmp_path: Path) -> None:
    """The NaN message names the checkpoint that is kept, or says there is none yet (not 'kept' regardless)."""
    run = tmp_path / "run"
    res = run_cli(train_cmd(run, "--set", "lr_rate=1e30", "--set", "epoch=1", "--set", "image_size=64",
                            "--set", "steps_per_epoch=5", "--set", "data.synthetic_train_size=32",
                            "--set", "data.synthetic_eval_size=8"))
    assert res.returncode != 0
    assert "no checkpoint was written yet" in res.stderr and "checkpoint kept" not in res.stderr, res.stderr


def test_a_failing_first_status_write_leaks_no_log_handler(tmp_path: Path) -> None:
    """status.json cannot be written (a folder stands where it goes): the attempt ends with the error
    recorded in log.txt and the run's log handler detached (it used to stay attached to every later run)."""
    import logging

    from conftest import TINY
    from mtl_cluster.config import load_train_config
    from mtl_cluster.train.loop import Trainer
    run = tmp_path / "run"
    (run / "status.json").mkdir(parents=True)
    logger = logging.getLogger("mtl_cluster")
    before = list(logger.handlers)
    with pytest.raises(OSError):
        Trainer(load_train_config(None, TINY), run).run(handle_signals=False)
    assert logger.handlers == before
    log = (run / "log.txt").read_text()
    assert "could not record the failure" in log and "IsADirectoryError" in log

"""Training runs on tiny fixtures in each real on-disk format, through the same CLI a job uses."""
from __future__ import annotations

import json
from pathlib import Path

from conftest import run_cli, sets, train_cmd
from formats import (write_chalearn_imagefolder, write_chalearn_official, write_fer2013_csv, write_fer2013_h5,
                     write_imdb_wiki_aligned, write_imdb_wiki_mat)

SMALL = ("image_size=64", "batch_size=4", "epoch=1", "steps_per_epoch=3")
BUDGET = ("image_size=64", "batch_size=4", "epoch=2", "steps_per_epoch=", "lr_rate=0.001")   # the budget rule decides


def _summary(run: Path) -> dict:
    return json.loads((run / "summary.json").read_text())


def test_single_task_run_needs_only_its_own_dataset(tmp_path: Path) -> None:
    write_fer2013_csv(tmp_path / "data" / "fer2013" / "fer2013.csv")   # nothing else exists
    run = tmp_path / "run"
    res = run_cli(train_cmd(run, *sets(*SMALL, "dataset=CVPR_16_ChaLearn", "loss_weights=[0,0,1,0]",
                                       f"data.root={tmp_path / 'data'}")))
    assert res.returncode == 0, res.stderr
    summary = _summary(run)
    assert summary["tasks"] == ["emotion"]
    assert summary["datasets"] == {"emotion": "FER_2013"}
    assert summary["splits"] == {"emotion": {"train": "train", "val": "PublicTest", "test": "PrivateTest"}}
    assert list(json.loads((run / "data.json").read_text())) == ["emotion"]
    assert set(summary["final"]["test"]) >= {"emotion_acc", "emotion_loss"}
    assert not any(k.startswith(("gender", "smile", "age")) for k in summary["final"]["test"])


def test_multitask_run_on_chalearn_folders_and_fer_h5_counts_unreadable_images(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_chalearn_imagefolder(data / "CVPR_GENDER_5_points")
    write_chalearn_imagefolder(data / "CVPR_SMILE_5_points", classes=("non_smile", "smile"))
    write_chalearn_imagefolder(data / "CVPR_AGE_5_points", classes=("8", "23", "61"))
    (data / "CVPR_GENDER_5_points" / "TRAIN" / "male" / "corrupt.jpg").write_bytes(b"\xff\xd8 not really")
    write_fer2013_h5(data / "fer2013" / "data.h5")
    run = tmp_path / "run"
    res = run_cli(train_cmd(run, *sets(*SMALL, "dataset=CVPR_16_ChaLearn", f"data.root={data}",
                                       "data.fer2013=fer2013/data.h5", "data.fer2013_eval_split=PublicTest")))
    assert res.returncode == 0, res.stderr
    summary = _summary(run)
    assert summary["datasets"] == {"gender": "ChaLearn_2016", "smile": "ChaLearn_2016", "emotion": "FER_2013",
                                   "age": "ChaLearn_2016"}
    assert summary["splits"]["emotion"] == {"train": "train", "val": "PrivateTest", "test": "PublicTest"}
    assert summary["splits"]["gender"]["val"] == "TRAIN hold-out 10%" and summary["splits"]["gender"]["test"] == "VALID"
    assert summary["classes"]["gender"] == {"female": 0, "male": 1}
    assert summary["classes"]["smile"] == {"non_smile": 0, "smile": 1}
    assert summary["unreadable_images"]["gender"] == 1
    assert summary["skipped_at_load"]["gender"] == 1          # the fixture's zero-byte file
    assert "corrupt.jpg" in (run / "log.txt").read_text()
    assert summary["final"]["test"]["age_n"] == 6              # every VALID age image evaluated (the test split)


def test_official_age_layout_and_fer_csv(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_chalearn_official(data / "ChaLearn_LAP_2016_age")
    write_fer2013_csv(data / "fer2013" / "fer2013.csv")
    run = tmp_path / "run"
    res = run_cli(train_cmd(run, *sets(*SMALL, "dataset=CVPR_16_ChaLearn", "loss_weights=[0,0,1,1]",
                                       "data.chalearn_layout=official", f"data.root={data}",
                                       "age_loss_type=age_100_10_cls_loss")))
    assert res.returncode == 0, res.stderr
    summary = _summary(run)
    assert {t: sp["test"] for t, sp in summary["splits"].items()} == {"emotion": "PrivateTest", "age": "test"}
    assert summary["age_loss_type"] == "age_100_10_cls_loss"
    assert summary["final"]["test"]["age_mae"] > 0
    age = summary["selection"]["tasks"]["age"]["test"]
    assert {"age_acc", "age_group_acc", "age_mae", "age_mae_argmax", "age_eps"} <= set(age)   # σ given: ε-error
    assert 0 <= age["age_eps"] <= 1 and "age_eps" in summary["metrics"]


def test_imdb_wiki_pretraining_then_fine_tune_from_it(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_imdb_wiki_aligned(data / "imdb_wiki")
    write_imdb_wiki_mat(data / "imdb_crop")
    pre = tmp_path / "pre"
    res = run_cli(train_cmd(pre, *sets(*SMALL, "dataset=IMDB-WIKI", "loss_weights=[1,0,0,1]",
                                       f"data.root={data}", "name=AlexNet-Gender_Age")))
    assert res.returncode == 0, res.stderr
    assert _summary(pre)["datasets"] == {"gender": "IMDB-WIKI", "age": "IMDB-WIKI"}
    mat = tmp_path / "mat"
    res = run_cli(train_cmd(mat, *sets(*SMALL, "dataset=IMDB-WIKI", "loss_weights=[0,0,0,1]",
                                       "data.imdb_wiki_layout=mat", f"data.root={data}")))
    assert res.returncode == 0, res.stderr
    write_chalearn_imagefolder(data / "CVPR_GENDER_5_points")
    fine = tmp_path / "fine"
    res = run_cli(train_cmd(fine, *sets(*SMALL, "dataset=CVPR_16_ChaLearn", "loss_weights=[1,0,0,0]",
                                        f"data.root={data}", "load_IMDB_WIKI_pretrained_model=true",
                                        f"init_checkpoint={pre}")))
    assert res.returncode == 0, res.stderr
    assert "initialised trunk and heads ['gender'] from" in (fine / "log.txt").read_text()


def test_missing_data_is_one_line_exit_2(tmp_path: Path) -> None:
    run = tmp_path / "run"
    res = run_cli(train_cmd(run, *sets(*SMALL, "dataset=CVPR_16_ChaLearn", "loss_weights=[1,0,0,0]",
                                       f"data.root={tmp_path / 'nowhere'}")))
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert lines[-1].startswith("mtl-train: error: ") and "CVPR_GENDER_5_points" in lines[-1]
    assert "Traceback" not in res.stderr
    assert json.loads((run / "status.json").read_text())["state"] == "failed"


def test_rows_of_a_section_get_equal_budgets(tmp_path: Path) -> None:
    """The multitask row and each single-task row of one section train the same steps and see each of their
    tasks' images equally often, although the tasks' training sets differ in size (budget: dataset)."""
    data = tmp_path / "data"
    write_chalearn_imagefolder(data / "CVPR_GENDER_5_points", n_per_class=6)
    write_chalearn_imagefolder(data / "CVPR_SMILE_5_points", classes=("non_smile", "smile"), n_per_class=5)
    write_chalearn_imagefolder(data / "CVPR_AGE_5_points", classes=("8", "23", "61"), n_per_class=2)
    write_fer2013_csv(data / "fer2013" / "fer2013.csv", n_train=40)
    budgets = {}
    for weights in ("[1,1,1,1]", "[1,0,0,0]", "[0,1,0,0]", "[0,0,1,0]", "[0,0,0,1]"):
        run = tmp_path / weights.strip("[]").replace(",", "")
        res = run_cli(train_cmd(run, *sets(*BUDGET, "dataset=CVPR_16_ChaLearn",
                                           f"loss_weights={weights}", f"data.root={data}")))
        assert res.returncode == 0, res.stderr
        budgets[weights] = _summary(run)["budget"]
    steps = {w: b["steps"] for w, b in budgets.items()}
    assert len(set(steps.values())) == 1, steps              # the same optimizer steps in every row
    images = {t: n for b in budgets.values() for t, n in b["images"].items()}
    for b in budgets.values():                               # each task's images: the same in every row
        assert all(images[t] == n for t, n in b["images"].items()), budgets
    mtl = budgets["[1,1,1,1]"]
    assert mtl["set_by"] == "age" and mtl["steps"] == 2 * mtl["steps_per_epoch"]
    assert set(mtl["images"]) == {"gender", "smile", "emotion", "age"}
    assert set(mtl["images"].values()) == {mtl["steps"] * 4}
    run = tmp_path / "active"                                # the old rule: emotion alone trains longer
    res = run_cli(train_cmd(run, *sets(*BUDGET, "dataset=CVPR_16_ChaLearn",
                                       "loss_weights=[0,0,1,0]", "budget=active", f"data.root={data}")))
    assert res.returncode == 0, res.stderr
    assert _summary(run)["budget"]["steps"] > mtl["steps"]

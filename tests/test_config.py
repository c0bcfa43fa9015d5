"""Config validation: every bad value is one line naming the key and the valid choices."""
from __future__ import annotations

from pathlib import Path

import pytest

from mtl_cluster.config import (DataConfig, TrainConfig, apply_overrides, load_train_config, signature,
                                train_config_from_dict)
from mtl_cluster.errors import ConfigError
from mtl_cluster.tasks import active_tasks, folder_sub_name


@pytest.mark.parametrize("raw, needle", [
    ({"loss_weights": {"gender": 1, "beauty": 1}}, "beauty: unknown task; valid tasks: gender, smile, emotion, age"),
    ({"loss_weights": [1, -1, 0, 0]}, "weights must be >= 0"),
    ({"loss_weights": [0, 0, 0, 0]}, "all weights are 0"),
    ({"loss_weights": [1, 1]}, "expected 4 weights"),
    ({"batch_size": 0}, "batch_size: must be >= 1"),
    ({"batch_size": "eight"}, "batch_size: expected int, got str"),
    ({"epoch": 2.5}, "epoch: expected int"),
    ({"lr_rate": "fast"}, "lr_rate: expected float"),
    ({"lr_rate": float("nan")}, "lr_rate: must be a finite number"),
    ({"dataset": "CelebA"}, "valid: synthetic, CVPR_16_ChaLearn, IMDB-WIKI"),
    ({"age_loss_type": "mse"}, "valid: age_cls_loss, age_100_10_cls_loss, age_10_cls_loss"),
    ({"bacth_size": 8}, "bacth_size: unknown key; valid keys: age_loss_type"),
    ({"data": {"rooot": "/x"}}, "data.rooot: unknown key"),
    ({"data": {"fer2013_eval_split": "Test"}}, "valid: PublicTest, PrivateTest"),
    ({"image_size": 32}, "image_size: must be >= 63"),
    ({"dataset": "IMDB-WIKI", "loss_weights": [1, 1, 0, 1]}, "IMDB-WIKI has labels for gender and age only"),
    ({"load_IMDB_WIKI_pretrained_model": True}, "needs init_checkpoint"),
    ({"device": "tpu"}, "valid: auto, cpu, cuda"),
])
def test_bad_values_are_one_line_errors(raw: dict, needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        train_config_from_dict(raw)
    assert needle in str(err.value)
    assert "\n" not in str(err.value)


def test_weights_as_mapping_and_active_tasks() -> None:
    cfg = train_config_from_dict({"loss_weights": {"emotion": 1}})
    assert cfg.loss_weights == (0.0, 0.0, 1.0, 0.0)
    assert cfg.active_tasks == ("emotion",) == active_tasks(cfg.loss_weights)
    assert folder_sub_name(cfg.loss_weights) == "_gender_0_smile_0_emotion_1_age_0"


def test_yaml_float_quirk_accepted() -> None:
    assert train_config_from_dict({"weight_decay": "1e-6"}).weight_decay == 1e-6


def test_signature_ignores_paths_and_workers_but_not_hyperparameters() -> None:
    base = TrainConfig()
    same = TrainConfig(num_workers=4, device="cpu", name="other", data=DataConfig(root="/scratch"))
    assert signature(base) == signature(same)
    assert signature(base) != signature(TrainConfig(lr_rate=0.01))
    assert signature(base) != signature(TrainConfig(seed=1))
    assert len(signature(base)) == 12


def test_config_roundtrip_through_run_folder_yaml(tmp_path: Path) -> None:
    import yaml
    cfg = train_config_from_dict({"loss_weights": [1, 0, 0, 1], "data": {"root": "/d"}})
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"signature": signature(cfg), **cfg.to_dict()}))
    assert load_train_config(path) == cfg


def test_overrides_nested_and_typed() -> None:
    out = apply_overrides({"data": {"root": "a"}}, ["data.root=/b", "epoch=3", "loss_weights=[1,0,0,0]"])
    assert out == {"data": {"root": "/b"}, "epoch": 3, "loss_weights": [1, 0, 0, 0]}
    with pytest.raises(ConfigError, match="expected key=value"):
        apply_overrides({}, ["epoch"])


def test_yaml_errors_name_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "run.yaml"
    bad.write_text("epoch: 3\nbatch_size: [1,\n")
    with pytest.raises(ConfigError, match=r"run.yaml:\d+: invalid YAML"):
        load_train_config(bad)
    bad.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_train_config(bad)
    with pytest.raises(ConfigError, match="no such file"):
        load_train_config(tmp_path / "missing.yaml")

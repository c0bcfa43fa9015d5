"""Config validation: every bad value is one line naming the key and the valid choices."""
from __future__ import annotations

from pathlib import Path

import pytest

from mtl_cluster.config import (DataConfig, TrainConfig, apply_overrides, load_train_config, signature,
                                train_config_from_dict)
from mtl_cluster.errors import ConfigError
from mtl_cluster.tasks import active_tasks, folder_sub_name

REPO = Path(__file__).resolve().parents[1]


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
    ({"data": {"synthetic_shared": ["gender"]}}, "data.synthetic_shared: one task shares with nothing"),
    ({"data": {"synthetic_shared": ["gender", "beard"]}}, "data.synthetic_shared[1]: unknown task 'beard'"),
    ({"data": {"synthetic_shared": ["smile", "smile"]}}, "a task is named twice"),
    ({"data": {"synthetic_shared": "gender,smile"}}, "expected a list of task names"),
    ({"data": {"synthetic_task_sizes": {"height": 3}}}, "data.synthetic_task_sizes.height: unknown task"),
    ({"data": {"synthetic_task_sizes": {"smile": 0}}}, "must be between 1 and data.synthetic_train_size"),
    ({"data": {"synthetic_task_sizes": {"smile": 2.5}}}, "data.synthetic_task_sizes.smile: expected int"),
    ({"data": {"synthetic_task_sizes": [32]}}, "expected a mapping task: int"),
    ({"data": {"synthetic_label_noise": {"age": 1.0}}}, "data.synthetic_label_noise.age: must be in [0, 1)"),
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


def test_planted_data_knobs_change_the_signature_only_when_set(tmp_path: Path) -> None:
    """Empty knobs keep every folder name; each set knob is part of the run's identity, and survives the
    round trip through a run folder's config.yaml."""
    import yaml
    base = TrainConfig()
    empty = train_config_from_dict({"data": {"synthetic_shared": [], "synthetic_task_sizes": {},
                                             "synthetic_label_noise": {}}})
    assert signature(empty) == signature(base)
    planted = [train_config_from_dict({"data": d}) for d in (
        {"synthetic_shared": ["gender", "smile"]}, {"synthetic_shared": ["smile", "gender"]},
        {"synthetic_task_sizes": {"smile": 32}}, {"synthetic_label_noise": {"smile": 0.2}})]
    sigs = {signature(c) for c in planted} | {signature(base)}
    assert len(sigs) == 5
    path = tmp_path / "config.yaml"
    for cfg in planted:
        path.write_text(yaml.safe_dump(cfg.to_dict()))
        back = load_train_config(path)
        assert back == cfg and signature(back) == signature(cfg)


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


def test_every_result_key_has_a_base_value() -> None:
    """A new config key must be added to SIGNATURE_BASE at its default, or it would rename every folder."""
    from mtl_cluster.config import _NOT_HASHED, SIGNATURE_BASE, flatten
    keys = set(flatten(TrainConfig().to_dict())) - _NOT_HASHED
    assert keys == set(SIGNATURE_BASE), (keys ^ set(SIGNATURE_BASE))


def test_adding_a_key_keeps_every_folder_name(monkeypatch) -> None:
    """Add a key at its default (as a later change would): every run of the study, the debug grid and the
    embedded default keeps its signature; only a run that sets the key to something else gets a new one."""
    import dataclasses

    from mtl_cluster import config as config_mod
    from mtl_cluster.launch.study import load_experiments
    from mtl_cluster.launch.grid import expand
    exps = load_experiments(REPO / "experiments.yaml")
    configs = [s.config for debug in (False, True) for s in expand(exps, Path("results"), debug=debug)]
    configs.append(config_mod.load_train_config(None))
    before = [config_mod.signature(c) for c in configs]
    Later = dataclasses.make_dataclass("Later", [("new_knob", int, dataclasses.field(default=3))],
                                       bases=(TrainConfig,), frozen=True)
    monkeypatch.setitem(config_mod.SIGNATURE_BASE, "new_knob", 3)
    later = [Later(**{f.name: getattr(c, f.name) for f in dataclasses.fields(TrainConfig)}) for c in configs]
    assert [config_mod.signature(c) for c in later] == before
    changed = dataclasses.replace(later[0], new_knob=4)
    assert config_mod.signature(changed) != before[0]
    assert len(set(before)) == len(before)             # distinct runs, distinct folders


def test_signature_known_answer() -> None:
    """The hash itself is pinned: a change to how signatures are computed renames folders and must be seen.
    (Protocol 3, issue 21: hold-outs shared by all tasks and by person, the seed's plateau threshold; under
    protocol 2 these were fbe45dbb2bae and 481319890ae6.)"""
    assert signature(TrainConfig()) == "c4360ca1ef3d"
    assert signature(load_train_config(None)) == "d1bd4e6f98fc"


def test_config_errors_carry_where_and_problem(tmp_path: Path) -> None:
    """Callers re-anchor an error (file, line, YAML path) from its fields, never by parsing its text."""
    from mtl_cluster.config import train_config_from_dict
    from mtl_cluster.launch.study import load_experiments
    with pytest.raises(ConfigError) as bad_type:
        train_config_from_dict({"data": {"holdout_fraction": "lots"}})
    assert (bad_type.value.where, bad_type.value.problem) == ("data.holdout_fraction", "expected float, got str 'lots'")
    with pytest.raises(ConfigError) as bad_rule:
        train_config_from_dict({"batch_size": 0})
    assert bad_rule.value.parts() == ("batch_size", "must be >= 1, got 0")
    exp = tmp_path / "experiments.yaml"
    exp.write_text("experiments:\n  - name: a\n    lr_rate: fast\n")
    with pytest.raises(ConfigError) as located:
        load_experiments(exp)
    assert located.value.where == "experiments[0].lr_rate" and located.value.problem.startswith("expected float")
    assert str(located.value) == f"{exp}:3: experiments[0].lr_rate: {located.value.problem}"

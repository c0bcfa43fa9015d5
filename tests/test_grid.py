"""Grid expansion: experiments x axes, signatures and run folders, init_from at the same grid point,
dependency order, --only / --set, and the cluster's data_root kept out of the signature."""
from __future__ import annotations

from pathlib import Path

import pytest

from mtl_cluster.launch.clusters import chunks, sbatch_parameters
from mtl_cluster.config import signature
from mtl_cluster.errors import ConfigError
from mtl_cluster.launch.study import load_experiments
from mtl_cluster.launch.grid import expand, grid_points
from mtl_cluster.rundir import default_run_dir

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def exps():
    return load_experiments(REPO / "experiments.yaml")


def test_seed_grid_is_complete_and_ordered(exps, tmp_path):
    specs = expand(exps, tmp_path, data_root="/data")
    assert len(specs) == 17 * 3
    assert len({s.run_dir for s in specs}) == len(specs)
    assert len({s.signature for s in specs}) == len(specs)
    pos = {s.run_dir: i for i, s in enumerate(specs)}
    tuned = [s for s in specs if s.init_from]
    assert len(tuned) == 21
    for s in tuned:
        assert pos[s.init_run_dir] < pos[s.run_dir]                 # pretraining first
        parent = specs[pos[s.init_run_dir]]
        assert parent.config.seed == s.config.seed                  # the same grid point
        assert parent.config.dataset == "IMDB-WIKI"
        assert s.config.init_checkpoint == str(parent.run_dir)
        assert s.config.load_IMDB_WIKI_pretrained_model is True
        assert s.config.init_from == s.init_from
    for s in specs:
        assert s.run_dir == default_run_dir(tmp_path, s.config) and s.signature == signature(s.config)
        assert s.config.data.root == "/data"
        assert s.config.batch_size == 8 and s.config.epoch == 40 and s.config.weight_decay == 1e-6


def test_data_root_is_not_identity(exps, tmp_path):
    a = expand(exps, tmp_path, data_root="/narvi/data")
    b = expand(exps, tmp_path, data_root="data")
    assert [s.run_dir for s in a] == [s.run_dir for s in b]


def test_init_from_changes_the_signature(exps, tmp_path):
    specs = {s.label: s for s in expand(exps, tmp_path)}
    plain, tuned = specs["AlexNet-Smile seed=0"], specs["AlexNet-Smile-IMDB-WIKI-pretrained seed=0"]
    assert plain.config.name == tuned.config.name == "AlexNet-Smile"
    assert plain.signature != tuned.signature


def test_debug_grid_is_synthetic_and_small(exps, tmp_path):
    specs = expand(exps, tmp_path, debug=True)
    assert all(s.config.data.synthetic and s.config.image_size == 64 and s.config.epoch == 2 for s in specs)
    assert {s.config.seed for s in specs} == {0}
    # Synthetic images stand in for each dataset: the IMDB-WIKI pretraining stays its own run (and section).
    assert not [s for s in specs if s.aliases] and len(specs) == 17
    assert sum(s.config.dataset == "IMDB-WIKI" for s in specs) == 3
    assert len({s.signature for s in specs}) == 17


def test_only_pulls_in_the_pretraining(exps, tmp_path):
    specs = expand(exps, tmp_path, only=["AlexNet-Smile-IMDB-WIKI-pretrained"])
    assert [s.name for s in specs] == ["IMDB-WIKI-AlexNet-Gender_Age"] * 3 + ["AlexNet-Smile-IMDB-WIKI-pretrained"] * 3


def test_only_unknown_lists_valid(exps, tmp_path):
    with pytest.raises(ConfigError, match=r"--only AlexNet-Smiel: no such experiment .*valid: AlexNet-Gender_Smile"):
        expand(exps, tmp_path, only=["AlexNet-Smiel"])


def test_set_overrides_every_run(exps, tmp_path):
    specs = expand(exps, tmp_path, overrides=["epoch=3", "data.synthetic_train_size=16"], only=["AlexNet-Age"])
    assert all(s.config.epoch == 3 and s.config.data.synthetic_train_size == 16 for s in specs)


def test_grid_points_cross_product():
    assert grid_points({"seed": [0, 1], "lr_rate": [0.1, 0.01]}) == [
        {"seed": 0, "lr_rate": 0.1}, {"seed": 0, "lr_rate": 0.01},
        {"seed": 1, "lr_rate": 0.1}, {"seed": 1, "lr_rate": 0.01}]
    assert grid_points({}) == [{}]


def test_narvi_sbatch_parameters(exps):
    p = sbatch_parameters(exps.clusters["narvi"], "mtl", "afterok:1_0")
    assert p["partition"] == "gpu" and p["gres"] == "gpu:1" and p["cpus_per_task"] == 4 and p["mem"] == "40GB"
    assert p["setup"][0] == "module load CUDA" and p["dependency"] == "afterok:1_0"
    assert p["additional_parameters"]["kill-on-invalid-dep"] == "yes"
    assert [len(c) for c in chunks(2500, 1000)] == [1000, 1000, 500]


def test_bad_set_blames_the_command_line(exps, tmp_path):
    with pytest.raises(ConfigError, match=r"^--set epochs: unknown key; valid keys: age_loss_type"):
        expand(exps, tmp_path, overrides=["epochs=3"])

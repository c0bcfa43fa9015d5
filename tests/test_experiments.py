"""experiments.yaml loading and validation: the repo's file is valid, every mistake is one line with the
file, the YAML line and the valid choices, exit code 2, and no traceback unless --traceback."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from mtl_cluster.cli.launch import launch_main
from mtl_cluster.cli.status import status_main
from mtl_cluster.errors import ConfigError
from mtl_cluster.launch.study import load_experiments

REPO = Path(__file__).resolve().parents[1]

GOOD = """\
defaults:
  dataset: synthetic
  epoch: 2
experiments:
  - name: A
    loss_weights: [1, 0, 0, 1]
  - name: B
    init_from: A
    load_IMDB_WIKI_pretrained_model: true
grid:
  seed: [0, 1]
clusters:
  here: {executor: local}
"""


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "experiments.yaml"
    p.write_text(textwrap.dedent(text))
    return p


def test_repo_file_declares_the_seed_study():
    exps = load_experiments(REPO / "experiments.yaml")
    names = {e.overrides["name"] for e in exps.experiments}
    assert {"AlexNet-Gender_Smile_Emotion_Age", "AlexNet-Gender", "AlexNet-Smile", "AlexNet-Emotion",
            "AlexNet-Age", "AlexNet-Age-100-class-10-classes-crossentropy",
            "AlexNet-Age-10-classes-crossentropy", "AlexNet-Gender_Age"} <= names
    assert len(exps.experiments) == 17                        # 7 ChaLearn/FER + 3 IMDB-WIKI + 7 fine-tuned
    assert {"narvi", "local", "test"} <= set(exps.clusters)
    narvi = exps.clusters["narvi"]
    assert (narvi.partition, narvi.gres, narvi.cpus_per_task, narvi.mem_gb) == ("gpu", "gpu:1", 4, 40)
    assert "module load CUDA" in narvi.setup
    assert exps.defaults["batch_size"] == 8 and exps.defaults["lr_schedule"] == 8
    tuned = [e for e in exps.experiments if e.init_from]
    assert len(tuned) == 7 and all(e.overrides["load_IMDB_WIKI_pretrained_model"] for e in tuned)
    assert exps.debug["data"]["synthetic"] is True and "dataset" not in exps.debug


def test_good_file_loads(tmp_path):
    exps = load_experiments(_write(tmp_path, GOOD))
    assert exps.ids() == ["A", "B"] and exps.grid == {"seed": [0, 1]}


@pytest.mark.parametrize("edit, where", [
    (("  epoch: 2", "  epochs: 2"), ":3: defaults.epochs: unknown key; valid keys: age_loss_type"),
    (("  epoch: 2", "  epoch: two"), ":3: defaults.epoch: expected int, got str 'two'"),
    (("    init_from: A", "    init_from: X"), ":8: experiments[1].init_from: names no run 'X'; valid: A"),
    (("  - name: B", "  - name: A"), ":7: experiments[1].name: duplicate name 'A'"),
    (("  seed: [0, 1]", "  seeds: [0, 1]"), ":11: grid.seeds: unknown grid axis"),
    (("  seed: [0, 1]", "  seed: []"), ":11: grid.seed: expected a non-empty list"),
    (("  here: {executor: local}", "  here: {executor: local, partitoin: gpu}"),
     ":13: clusters.here.partitoin: unknown key; valid keys:"),
    (("  here: {executor: local}", "  here: {executor: pbs}"), ":13: clusters.here.executor: 'pbs'; valid: slurm, local"),
    (("clusters:", "cluster:"), ":12: cluster: unknown key; valid: defaults, experiments, grid, clusters, debug, demo"),
    (("    loss_weights: [1, 0, 0, 1]", "    loss_weights: [1, 0, 1]"), ":6: experiments[0].loss_weights: expected 4"),
    (("  epoch: 2", "  epoch: 2\n  epoch: 3"), ":4: defaults.epoch: key given twice"),
    (("experiments:", "experiments: ["), ": invalid YAML"),
    (("  - name: B", "  - name: B\n    resources: {nodes: 2}"),
     ":8: experiments[1].resources.nodes: not a per-experiment resource; valid: partition"),
    (("  - name: B", "  - name: B\n    resources: {timeout_min: 0}"),
     ":8: experiments[1].resources.timeout_min: must be >= 1, got 0"),
    (("  - name: B", "  - name: B\n    resources: {mem_gb: lots}"),
     ":8: experiments[1].resources.mem_gb: expected int or float, got str 'lots'"),
    (("  - name: B", "  - name: B\n    resources: [gpu]"), ":8: experiments[1].resources: expected a mapping"),
])
def test_mistakes_are_one_line_with_line_number(tmp_path, capsys, edit, where):
    text = GOOD.replace(*edit)
    path = _write(tmp_path, text)
    rc = launch_main([str(path), "--cluster", "here", "--dry-run", "--results", str(tmp_path / "r"),
                      "--jobs-dir", str(tmp_path / "jobs")])
    err = capsys.readouterr().err
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"mtl-launch: error: {path}"), lines[0]
    assert where in lines[0], lines[0]
    assert "Traceback" not in err


def test_cycle_is_named(tmp_path):
    text = GOOD.replace("  - name: A\n", "  - name: A\n    init_from: B\n")
    with pytest.raises(ConfigError, match=r"experiments\[0\]\.init_from: init_from cycle: A -> B -> A"):
        load_experiments(_write(tmp_path, text))


def test_unknown_cluster_lists_valid(tmp_path, capsys):
    path = _write(tmp_path, GOOD)
    assert launch_main([str(path), "--cluster", "narvo", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "clusters: no cluster 'narvo'; valid: here" in err and len(err.strip().splitlines()) == 1


def test_cross_field_error_points_at_the_experiment(tmp_path, capsys):
    text = GOOD.replace("  - name: A\n", "  - name: A\n    dataset: IMDB-WIKI\n").replace(
        "[1, 0, 0, 1]", "[1, 1, 0, 1]")
    path = _write(tmp_path, text)
    assert launch_main([str(path), "--cluster", "here", "--dry-run", "--results", str(tmp_path / "r"),
                        "--jobs-dir", str(tmp_path / "j")]) == 2
    err = capsys.readouterr().err
    assert f"{path}:7: experiments[0].loss_weights: " in err and "smile and emotion weights to 0" in err


def test_traceback_flag_shows_the_stack(tmp_path, capsys):
    path = _write(tmp_path, GOOD.replace("epoch: 2", "epochs: 2"))
    assert launch_main([str(path), "--cluster", "here", "--dry-run", "--traceback"]) == 2
    assert "Traceback" in capsys.readouterr().err


def test_status_bad_yaml_exit_2(tmp_path, capsys):
    path = _write(tmp_path, GOOD.replace("name: B", "name: B\n    colour: red"))
    assert status_main([str(path)]) == 2
    assert "experiments[1].colour: unknown key" in capsys.readouterr().err


def test_demo_is_the_debug_grid_with_its_overrides_on_top(tmp_path):
    """`--demo` (scripts/demo.sh): every run of the debug grid, at the demo's seeds, with the debug keys the
    demo leaves alone (synthetic data, 64 px) and the demo's own (bold cues, He-scaled trunk, Adam, its
    budget)."""
    from mtl_cluster.launch.grid import expand

    exps = load_experiments(REPO / "experiments.yaml")
    debug = expand(exps, tmp_path, debug=True)
    demo = expand(exps, tmp_path, demo=True)
    assert len(demo) == len(debug) * len(exps.demo_grid["seed"]) and exps.demo_grid["seed"] == [0, 1]
    assert {(s.name, s.config.seed) for s in demo} == {(s.name, seed) for s in debug for seed in (0, 1)}
    for spec in demo:
        cfg = spec.config
        assert cfg.data.synthetic and cfg.image_size == 64 and cfg.device == "cpu"          # from debug:
        assert cfg.data.synthetic_cues == "bold" and cfg.optimizer == "adam"                 # from demo:
        assert cfg.backbone_weights == "kaiming"
        assert cfg.total_steps is None and cfg.steps_per_epoch == exps.demo["steps_per_epoch"]
    assert not {s.run_dir for s in demo} & {s.run_dir for s in debug}                         # new folders
    fine_tunes = [s for s in demo if s.init_from]
    assert len(fine_tunes) == 14 and all(s.init_run_dir in {p.run_dir for p in demo} for s in fine_tunes)


def test_demo_section_is_checked_like_debug(tmp_path):
    path = tmp_path / "e.yaml"
    path.write_text((REPO / "experiments.yaml").read_text() + "  init_from: x\n")
    with pytest.raises(ConfigError, match=r"demo\.init_from: cannot be overridden for the whole grid"):
        load_experiments(path)

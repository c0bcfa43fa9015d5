"""Security checks: YAML through safe loading only, nothing escapes results/ jobs/ logs/, no YAML value
reaches a shell unquoted, checkpoints are tensors only, and no pickle is read from outside submitit's
own folders. Each check is a case of the bad input corpus (category "security")."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from badinput import assert_inside, assert_one_line_error, call
from mtl_cluster.collect import scan as collect
from mtl_cluster.cli.train import train_main
from mtl_cluster.cli.collect import collect_main
from mtl_cluster.cli.launch import launch_main
from mtl_cluster.launch.study import load_experiments
from mtl_cluster.launch.grid import expand
from runfolders import config as run_config, write_run
from test_bad_input import GOOD, sbatch_lines

SOURCES = sorted((Path(__file__).resolve().parents[1] / "mtl_cluster").rglob("*.py"))
PAYLOADS = ["!!python/object/apply:os.system ['touch {m}']", "!!python/object/new:os.system ['touch {m}']",
            "!!python/object/apply:subprocess.check_call [['touch', '{m}']]", "!!python/name:os.system"]


def _source() -> str:
    return "\n".join(p.read_text() for p in SOURCES)


def test_collect_reads_yaml_with_a_safe_loader(corpus) -> None:
    with corpus.case("security"):
        assert issubclass(collect._Loader, yaml.constructor.SafeConstructor)
        assert not issubclass(collect._Loader, yaml.constructor.FullConstructor)   # Full/Unsafe build objects


def test_no_unsafe_yaml_call_in_the_package(corpus) -> None:
    with corpus.case("security"):
        text = _source()
        assert not re.search(r"yaml\.(unsafe_load|full_load|load_all)\(|Loader=yaml\.(Loader|FullLoader|"
                             r"UnsafeLoader)|\byaml\.Loader\b", text)
        for call_ in re.findall(r"yaml\.load\([^)]*\)", text):
            assert "Loader=_Loader" in call_, call_


@pytest.mark.parametrize("payload", PAYLOADS)
def test_python_tags_are_refused_everywhere(payload: str, tmp_path: Path, corpus) -> None:
    marker = tmp_path / "pwned"
    tag = payload.format(m=marker)
    exp = tmp_path / "experiments.yaml"
    exp.write_text(GOOD.replace("name: A\n", f"name: {tag}\n"))
    with corpus.case("security"):
        assert_one_line_error(call(launch_main, [str(exp), "--debug", "--dry-run", "--results",
                                                 str(tmp_path / "r"), "--jobs-dir", str(tmp_path / "j")]),
                              "launch", "invalid YAML")
    cfg = tmp_path / "run.yaml"
    cfg.write_text(f"epoch: 1\nname: {tag}\n")
    with corpus.case("security"):
        assert_one_line_error(call(train_main, ["--config", str(cfg), "--print-config"]), "train", "invalid YAML")
    results = tmp_path / "results"
    run = write_run(results, run_config())
    (run / "config.yaml").write_text((run / "config.yaml").read_text() + f"extra: {tag}\n")
    with corpus.case("security"):
        res = call(collect_main, [str(results), "--format", "json"])
        assert res.code == 0 and "config.yaml: invalid" in res.out
    assert not marker.exists()


ESCAPES = ["../../../../../../tmp/mtl-escape", "/tmp/mtl-escape", "a/../../b", "..", "~/x", "x/", "C:\\x"]


@pytest.mark.parametrize("name", ESCAPES)
def test_run_names_cannot_leave_results(name: str, tmp_path: Path, corpus) -> None:
    """Through experiments.yaml (with an id standing in), a run config and --set: refused before any write."""
    exp = tmp_path / "experiments.yaml"
    exp.write_text(yaml.safe_dump({"defaults": {"dataset": "synthetic"}, "experiments": [{"name": name, "id": "ok"}]}))
    base = ["--results", str(tmp_path / "results"), "--jobs-dir", str(tmp_path / "jobs")]
    with corpus.case("security"):
        assert_one_line_error(call(launch_main, [str(exp), "--debug", *base]), "launch", "not a usable run name")
    cfg = tmp_path / "run.yaml"
    cfg.write_text(yaml.safe_dump({"name": name, "epoch": 1}))
    with corpus.case("security"):
        assert_one_line_error(call(train_main, ["--config", str(cfg), "--results", str(tmp_path / "results")]),
                              "train", "not a usable run name")
    with corpus.case("security"):
        assert_one_line_error(call(train_main, ["--results", str(tmp_path / "results"), f"--set=name={name}"]),
                              "train", "not a usable run name")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["experiments.yaml", "run.yaml"]


@pytest.mark.parametrize("cluster", ["../../x", "/abs", "a b", "x$(id)", ".."])
def test_cluster_names_cannot_leave_logs_or_jobs(cluster: str, tmp_path: Path, corpus) -> None:
    exp = tmp_path / "experiments.yaml"
    exp.write_text(yaml.safe_dump({"experiments": [{"name": "A"}], "clusters": {cluster: {"executor": "local"}}}))
    with corpus.case("security"):
        assert_one_line_error(call(launch_main, [str(exp), "--cluster", cluster, "--jobs-dir", str(tmp_path / "j"),
                                                 "--logs-dir", str(tmp_path / "l")]), "launch", "cluster name")
        assert sorted(p.name for p in tmp_path.iterdir()) == ["experiments.yaml"]


def test_only_names_an_experiment_not_a_path(tmp_path: Path, corpus) -> None:
    exp = tmp_path / "experiments.yaml"
    exp.write_text(GOOD)
    with corpus.case("security"):
        assert_one_line_error(call(launch_main, [str(exp), "--debug", "--dry-run", "--only", "../../A"]), "launch",
                              "no such experiment")


EVIL = "x$(touch {m})`touch {m}`;touch {m}"


def test_no_yaml_value_reaches_the_sbatch_script_unquoted(tmp_path: Path, corpus) -> None:
    """Every string of a Slurm profile (and the logs folder) carries a payload; the --dry-run scripts show
    each one only inside single quotes, except the setup lines: the one place the user writes shell."""
    marker = tmp_path / "pwned"
    evil = EVIL.format(m=marker)
    doc = yaml.safe_load(GOOD)
    doc["experiments"][0]["name"] = "Ålex"
    doc["experiments"][1]["init_from"] = "Ålex"
    doc["clusters"]["farm"] = {"executor": "slurm", "data_root": evil, **{k: evil for k in (
        "partition", "gres", "account", "qos", "constraint", "exclude", "reservation", "wckey", "mail_user")},
        "additional": {"mail-user": evil}, "setup": ["module load CUDA  # the user's own shell line"]}
    exp = tmp_path / "experiments.yaml"
    exp.write_text(yaml.safe_dump(doc, allow_unicode=True))
    logs = tmp_path / "logs $(touch x)"
    with corpus.case("security"):
        res = call(launch_main, [str(exp), "--cluster", "farm", "--dry-run", "--no-preflight", "--results",
                                 str(tmp_path / "results"), "--jobs-dir", str(tmp_path / "jobs"), "--logs-dir",
                                 str(logs)])
        assert res.code == 0, res.err
        lines = sbatch_lines(res.out)
        setup = [i for i, line in enumerate(lines) if line == "# setup"]
        assert setup and all(lines[i + 1] == "module load CUDA  # the user's own shell line" for i in setup)
        for i, line in enumerate(lines):
            if i - 1 in setup or "Ålex" in line and line.startswith("#SBATCH --dependency='afterok:<job of "):
                continue
            unquoted = re.sub(r"'[^']*'", "''", line)   # drop single-quoted words: the shell keeps them literal
            assert not re.search(r"\$\(|`|;touch|Ålex", unquoted), line
        assert "touch" in res.out    # the payload is in the scripts (quoted), so the check above had work
    assert not marker.exists() and not (tmp_path / "x").exists()


def test_no_shell_in_the_package(corpus) -> None:
    """Subprocesses are argument lists (trainer, squeue/sacct/sinfo/scancel, git), never a shell string."""
    with corpus.case("security"):
        text = _source()
        assert "shell=True" not in text and not re.search(r"os\.(system|popen)\(", text)


def test_checkpoints_are_loaded_as_tensors_only(corpus) -> None:
    with corpus.case("security"):
        loads = re.findall(r"torch\.load\([^)]*\)", _source())
        assert loads and all("weights_only=True" in c for c in loads), loads


def test_no_pickle_is_read_by_the_package(corpus) -> None:
    """Only submitit unpickles (the job's own submitted.pkl under logs/<cluster>/<job>/, written by this
    launch); mtl-status and the planner read status.json, jobs/*.json and squeue/sacct, never a result."""
    with corpus.case("security"):
        text = _source()
        assert not re.search(r"^\s*(import|from)\s+(c?pickle|cloudpickle|dill|joblib)\b", text, re.M)
        assert not re.search(r"(?<!meter)\.(result|results|exception)\(\)|job_from_folder|submitit\.Job\(|load_pickle", text)


class _Boom:
    """Unpickling this runs a command: what a hostile checkpoint would do."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        import os
        return os.system, (f"touch {self.marker}",)


def test_a_pickled_object_in_a_checkpoint_is_damaged_not_run(tmp_path: Path, corpus) -> None:
    import torch

    from mtl_cluster.errors import CheckpointError
    from mtl_cluster.train.checkpoint import checkpoint_name, load_init, load_latest

    marker = tmp_path / "pwned"
    folder = tmp_path / "run" / "checkpoints"
    folder.mkdir(parents=True)
    bad = folder / checkpoint_name(1, 0)
    torch.save({"format": 1, "model": _Boom(marker)}, bad)
    with corpus.case("security"):
        assert load_latest(folder, None) is None
        assert not bad.exists() and bad.with_name(bad.name + ".damaged").exists()   # kept aside for a human
    other = tmp_path / "init.pt"
    torch.save({"format": 1, "model": {"features.0.weight": _Boom(marker)}}, other)
    with corpus.case("security"):
        with pytest.raises(CheckpointError, match="cannot read"):
            load_init(other)
    pth = tmp_path / "backbone.pth"
    torch.save({"features.0.weight": _Boom(marker)}, pth)
    with corpus.case("security"):
        res = call(train_main, ["--run-dir", str(tmp_path / "r2"), "--set=epoch=1", "--set=steps_per_epoch=1",
                                f"--set=backbone_weights={pth}", "--set=image_size=64"])
        assert res.code == 2 and "backbone_weights: cannot read" in res.err.splitlines()[-1]
    assert not marker.exists()


def test_accepted_names_stay_inside_results(tmp_path: Path, corpus) -> None:
    exp = tmp_path / "experiments.yaml"
    exp.write_text(GOOD.replace("name: A\n", "name: a..b\n    id: A\n"))
    with corpus.case("security"):
        for spec in expand(load_experiments(exp), tmp_path / "results"):
            assert_inside(spec.run_dir, tmp_path / "results")

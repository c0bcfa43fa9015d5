"""mtl-collect --right-size --write-resources STUDY (mtl_cluster/launch/resize.py): the proposal written into the
study file's ``resources:``, only the changed values' text touched, checked by the study loader, atomic, the old
file kept as ``.bak``.

The runs are test_efficiency's study: its proposals are AlexNet-Gender_Smile_Emotion_Age timeout_min 160, mem_gb 4;
AlexNet-Gender 70, 2; AlexNet-Age 70 and no memory (its runs recorded no peak).
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from runfolders import config, environment, write_run
from test_collect import collect
from test_efficiency import GENDER, MTL, _usage, write_efficiency_study

from mtl_cluster.launch.grid import expand
from mtl_cluster.launch.study import load_experiments

FLAGS = ("--right-size", "--no-image-tests", "--write-resources", "experiments.yaml")
NAME_ONLY = "by its name only: no run of the study has its configuration (launched with --set, or the study was " \
            "edited since)"

STUDY = """\
# my study: every comment stays
defaults:
  epoch: 3            # short

experiments:
  # the multitask row
  - name: AlexNet-Gender_Smile_Emotion_Age
    loss_weights: [1, 1, 1, 1]
    resources: {timeout_min: 2880, partition: gpu}   # flow style

  - name: 'AlexNet-Gender'
    loss_weights: [1, 0, 0, 0]
    resources:
      partition: gpu     # the GPU queue
      mem_gb: 40

  - name: "AlexNet-Age"
    id: age-only
    loss_weights: [0, 0, 0, 1]
    lr_rate: 0.01
"""
# The expected text: the old one with exactly these lines changed or added, nothing else.
WRITTEN = STUDY.replace("resources: {timeout_min: 2880, partition: gpu}",
                        "resources: {timeout_min: 160, partition: gpu, mem_gb: 4}") \
    .replace("      mem_gb: 40\n", "      mem_gb: 2\n      timeout_min: 70\n") \
    .replace("    id: age-only\n", "    id: age-only\n    resources: {timeout_min: 70}\n")


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("rightsize_write") / "results"
    write_efficiency_study(root)
    return root


def _write(tmp_path: Path, monkeypatch, capsys, results: Path, text: str, *flags: str) -> tuple[int, list[str], str]:
    """experiments.yaml with ``text`` in tmp_path, then mtl-collect there: (rc, its right-size lines after the
    proposals (the writer's), stderr)."""
    (tmp_path / "experiments.yaml").write_text(text, encoding="utf-8")
    rc, out, err = collect(tmp_path, monkeypatch, capsys, str(results), *(flags or FLAGS))
    return rc, [ln for ln in out.splitlines() if ln.startswith(("wrote ", "note: ", "experiments.yaml: "))], err


def test_only_the_changed_values_change(tmp_path, monkeypatch, capsys, results) -> None:
    """Flow resources: a value replaced, a key added inside the braces; block resources: a value replaced, a key
    added on its own line, partition kept; no resources: one flow line after the id line. Every other byte stays."""
    rc, lines, err = _write(tmp_path, monkeypatch, capsys, results, STUDY)
    assert rc == 0, err
    study = tmp_path / "experiments.yaml"
    assert len(WRITTEN.splitlines()) == len(STUDY.splitlines()) + 2 and "{timeout_min: 160," in WRITTEN
    assert study.read_text(encoding="utf-8") == WRITTEN
    assert (tmp_path / "experiments.yaml.bak").read_text(encoding="utf-8") == STUDY
    assert lines == [
        f"note: AlexNet-Gender_Smile_Emotion_Age: taken as AlexNet-Gender_Smile_Emotion_Age {NAME_ONLY}",
        f"note: AlexNet-Gender: taken as AlexNet-Gender {NAME_ONLY}",
        f"note: AlexNet-Age: taken as age-only {NAME_ONLY}",
        "wrote experiments.yaml: AlexNet-Gender_Smile_Emotion_Age: timeout_min 2880 -> 160, mem_gb (unset) -> 4; "
        "AlexNet-Gender: timeout_min (unset) -> 70, mem_gb 40 -> 2; age-only: timeout_min (unset) -> 70; previous "
        "file kept as experiments.yaml.bak"]
    res = {e.id: e.resources for e in load_experiments(study).experiments}
    assert res == {"AlexNet-Gender_Smile_Emotion_Age": {"timeout_min": 160, "partition": "gpu", "mem_gb": 4},
                   "AlexNet-Gender": {"partition": "gpu", "mem_gb": 2, "timeout_min": 70},
                   "age-only": {"timeout_min": 70}}


def test_write_resources_needs_right_size(tmp_path, monkeypatch, capsys, results) -> None:
    rc, _, err = _write(tmp_path, monkeypatch, capsys, results, STUDY, "--no-image-tests", "--write-resources",
                        "experiments.yaml")
    assert rc == 2
    assert err.splitlines() == ["mtl-collect: error: --write-resources writes the --right-size proposal: add "
                                "--right-size"]
    assert (tmp_path / "experiments.yaml").read_text(encoding="utf-8") == STUDY
    assert not (tmp_path / "experiments.yaml.bak").exists()


def test_an_experiment_the_file_lacks_is_a_note(tmp_path, monkeypatch, capsys, results) -> None:
    """A study without the age row: a note for that row, the other rows still written; a file that is none of
    these runs' study: notes only, nothing written."""
    partial = STUDY.split('  - name: "AlexNet-Age"')[0].rstrip("\n") + "\n"
    rc, lines, err = _write(tmp_path, monkeypatch, capsys, results, partial)
    assert rc == 0, err
    assert "note: AlexNet-Age: no experiment named AlexNet-Age in experiments.yaml (not the study these runs came " \
           "from?)" in lines
    assert lines[-1].startswith("wrote experiments.yaml: AlexNet-Gender_Smile_Emotion_Age: timeout_min 2880 -> 160")
    assert "age" not in lines[-1]
    assert load_experiments(tmp_path / "experiments.yaml").experiments[1].resources["timeout_min"] == 70

    other = "experiments:\n  - name: AlexNet-Smile   # not a row of these runs\n    loss_weights: [0, 1, 0, 0]\n"
    rc, lines, err = _write(tmp_path, monkeypatch, capsys, results, other)
    assert rc == 0, err
    assert len([ln for ln in lines if ln.startswith("note: ") and "no experiment named" in ln]) == 3
    assert lines[-1] == "experiments.yaml: no row is a full run of one of its experiments; nothing written"
    assert (tmp_path / "experiments.yaml").read_text(encoding="utf-8") == other


def test_the_file_keeps_its_mode(tmp_path, monkeypatch, capsys, results) -> None:
    """A private study file stays private, and so does its .bak (the umask alone would give 0644)."""
    study = tmp_path / "experiments.yaml"
    study.write_text(STUDY, encoding="utf-8")
    study.chmod(0o600)
    old = os.umask(0o022)
    try:
        rc, _, err = collect(tmp_path, monkeypatch, capsys, str(results), *FLAGS)
    finally:
        os.umask(old)
    assert rc == 0, err
    assert study.read_text(encoding="utf-8") == WRITTEN
    assert study.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "experiments.yaml.bak").stat().st_mode & 0o777 == 0o600


def test_already_right_sized_writes_nothing(tmp_path, monkeypatch, capsys, results) -> None:
    rc, lines, err = _write(tmp_path, monkeypatch, capsys, results, WRITTEN)
    assert rc == 0, err
    assert lines[-1] == "experiments.yaml: already right-sized (no value to change); nothing written"
    assert (tmp_path / "experiments.yaml").read_text(encoding="utf-8") == WRITTEN
    assert not (tmp_path / "experiments.yaml.bak").exists()


def test_an_edit_that_does_not_come_out_as_proposed_is_refused(tmp_path, monkeypatch, capsys, results) -> None:
    """Resources shared through an alias cannot be changed for one experiment: one line, exit 2, nothing written;
    resources from a merge key would lose the merged keys: the loader's check refuses that edit."""
    shared = STUDY.replace("resources: {timeout_min: 2880, partition: gpu}", "resources: &r {timeout_min: 2880}") \
        .replace("    lr_rate: 0.01\n", "    lr_rate: 0.01\n    resources: *r\n")
    (tmp_path / "experiments.yaml").write_text(shared, encoding="utf-8")
    rc, out, err = collect(tmp_path, monkeypatch, capsys, str(results), *FLAGS)
    assert rc == 2
    assert "AlexNet-Gender_Smile_Emotion_Age: timeout_min 120 -> 160" in out   # the proposal is still shown
    assert err.splitlines() == ["mtl-collect: error: experiments.yaml:21: experiments[2].resources: not a mapping "
                                "written in this entry (an alias?); set timeout_min/mem_gb there by hand"]
    assert (tmp_path / "experiments.yaml").read_text(encoding="utf-8") == shared

    merged = STUDY.replace('  - name: "AlexNet-Age"\n', '  - <<: {resources: {partition: gpu}}\n    name: "AlexNet-Age"\n')
    assert merged != STUDY
    rc, _, err = _write(tmp_path, monkeypatch, capsys, results, merged)
    assert rc == 2
    assert len(err.splitlines()) == 1
    assert "the edit did not come out as proposed (age-only's resources would be {'timeout_min': 70})" in err
    assert (tmp_path / "experiments.yaml").read_text(encoding="utf-8") == merged
    assert not (tmp_path / "experiments.yaml.bak").exists()


SHARED_NAME = """\
grid:
  lr_rate: [0.001, 0.01]
experiments:
  - name: AlexNet-Gender
    loss_weights: [1, 0, 0, 0]
  - name: AlexNet-Gender
    id: IMDB-WIKI-AlexNet-Gender
    dataset: IMDB-WIKI
    loss_weights: [1, 0, 0, 0]
    resources:
      timeout_min: 600
"""


def test_rows_map_by_signature(tmp_path, monkeypatch, capsys) -> None:
    """Two experiments share a name (told apart by id): each row's runs find theirs by signature; the grid's two
    rows of one experiment give it the larger proposal (the 0.01 row's 3000 MiB peak: 4 GB, not 2)."""
    study = tmp_path / "experiments.yaml"
    study.write_text(SHARED_NAME, encoding="utf-8")
    peaks = {("AlexNet-Gender", 0.001): 1000, ("AlexNet-Gender", 0.01): 3000,
             ("IMDB-WIKI-AlexNet-Gender", 0.001): 500, ("IMDB-WIKI-AlexNet-Gender", 0.01): 500}
    for spec in expand(load_experiments(study), tmp_path / "results"):
        lr = dict(spec.point)["lr_rate"]
        cfg = {**config(**GENDER, seed=0, lr_rate=lr, dataset=spec.config.dataset), "signature": spec.signature}
        write_run(tmp_path / "results", cfg, {}, envs=[environment(cfg, usage=_usage(1200, peaks[(spec.name, lr)]))])
    rc, out, err = collect(tmp_path, monkeypatch, capsys, "results", *FLAGS)
    assert rc == 0, err
    assert not [ln for ln in out.splitlines() if ln.startswith("note: ")]
    res = {e.id: e.resources for e in load_experiments(study).experiments}
    assert res == {"AlexNet-Gender": {"timeout_min": 70, "mem_gb": 4},
                   "IMDB-WIKI-AlexNet-Gender": {"timeout_min": 50, "mem_gb": 1}}   # its runs were shorter
    assert "IMDB-WIKI-AlexNet-Gender: timeout_min 600 -> 50, mem_gb (unset) -> 1" in out

    # A study edited since (other epochs: no run's signature), the shared name cannot say which: a note, nothing
    # written.
    study.write_text(SHARED_NAME.replace("grid:\n  lr_rate: [0.001, 0.01]\n", "defaults:\n  epoch: 5\n"),
                     encoding="utf-8")
    rc, out, err = collect(tmp_path, monkeypatch, capsys, "results", *FLAGS)
    assert rc == 0, err
    assert "experiments AlexNet-Gender, IMDB-WIKI-AlexNet-Gender share the name AlexNet-Gender and none makes its " \
           "runs; set their resources: by hand" in out
    assert "experiments.yaml: no row is a full run of one of its experiments; nothing written" in out


def test_debug_runs_never_set_the_full_runs_limits(tmp_path, monkeypatch, capsys) -> None:
    """Runs of the study's --debug grid (tiny, synthetic) are rows too, but their use says nothing of what the full
    runs need: each gets a note, and nothing is written."""
    text = "debug:\n  epoch: 1\n  steps_per_epoch: 2\n" + SHARED_NAME.split("experiments:\n")[0] + \
        "experiments:\n  - name: AlexNet-Gender\n    loss_weights: [1, 0, 0, 0]\n"
    study = tmp_path / "experiments.yaml"
    study.write_text(text, encoding="utf-8")
    for spec in expand(load_experiments(study), tmp_path / "results", debug=True):
        cfg = {**config(**GENDER, seed=0, lr_rate=dict(spec.point)["lr_rate"]), "signature": spec.signature}
        write_run(tmp_path / "results", cfg, {}, envs=[environment(cfg, usage=_usage(60, 900))])
    rc, out, err = collect(tmp_path, monkeypatch, capsys, "results", *FLAGS)
    assert rc == 0, err
    notes = [ln for ln in out.splitlines() if ln.startswith("note: ")]
    assert notes and all(ln.endswith(": a run of the --debug/--demo grid: its use says nothing of what the full runs "
                                     "need; not written (right-size from the study's own runs)") for ln in notes), out
    assert "experiments.yaml: no row is a full run of one of its experiments; nothing written" in out
    assert study.read_text(encoding="utf-8") == text and not (tmp_path / "experiments.yaml.bak").exists()

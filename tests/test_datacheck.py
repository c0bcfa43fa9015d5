"""mtl-data check and the launch preflight's dataset counts, on datasets written in the real formats
(tests/formats.py): counts and label histograms, unreadable files, partial copies, the reference counts,
bad input. Everything in-process."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from badinput import assert_one_line_error, call
from formats import (
    write_chalearn_imagefolder,
    write_chalearn_official,
    write_fer2013_csv,
    write_fer2013_h5,
    write_image,
    write_imdb_wiki_aligned,
    write_imdb_wiki_mat,
)

from mtl_cluster.datacheck import check as datacheck
from mtl_cluster.cli.data import data_main
from mtl_cluster.cli.launch import launch_main
from mtl_cluster.config import DataConfig
from mtl_cluster.datacheck.official import REFERENCES, Reference
from mtl_cluster.tasks import EMOTIONS
from mtl_cluster.train.data.chalearn import load_chalearn
from mtl_cluster.train.data.imdb_wiki import GENDER_CLASSES, load_imdb_wiki

DECADES = ["0-9", "10-19", "20-29", "30-39", "40-49", "50-59", "60-69", "70-79", "80-89", "90+"]


def decades(ages) -> dict[str, int]:
    found = Counter(DECADES[min(int(a) // 10, 9)] for a in ages)
    return {d: found[d] for d in DECADES}


def by_split(report: datacheck.PartReport) -> dict[str, datacheck.SplitReport]:
    return {s.split: s for s in report.splits}


@pytest.fixture
def root(tmp_path: Path) -> dict:
    """A data root in the group's layouts (the defaults' folder names), and what was written there."""
    r = tmp_path / "data"
    return {"root": r,
            "gender": write_chalearn_imagefolder(r / "CVPR_GENDER_5_points"),
            "smile": write_chalearn_imagefolder(r / "CVPR_SMILE_5_points", classes=("no_smile", "smile")),
            "age": write_chalearn_imagefolder(r / "CVPR_AGE_5_points", classes=("3", "27", "95"), zero_byte=0),
            "fer": write_fer2013_csv(r / "fer2013" / "fer2013.csv", n_train=9, n_public=4, n_private=5),
            "imdb": write_imdb_wiki_aligned(r / "imdb_wiki", n_test=2)}


def test_counts_and_histograms_are_what_was_written(root):
    parts, absent = datacheck.parts_under(DataConfig(root=str(root["root"])))
    assert [p.name for p in parts] == ["ChaLearn gender", "ChaLearn smile", "ChaLearn age", "FER2013",
                                       "IMDB-WIKI (aligned)"] and absent == []
    report = datacheck.check(parts)
    got = {r.part.name: r for r in report.parts}
    for task in ("gender", "smile", "age"):
        written = root[task]
        splits = by_split(got[f"ChaLearn {task}"])
        for split in ("TRAIN", "VALID"):
            s = splits[split]
            labels = [label for _, label in written.splits[split]]
            want = decades(map(float, labels)) if task == "age" else dict(sorted(Counter(labels).items()))
            assert (s.found, s.images, s.labels) == (written.count(split), written.count(split), {task: want})
            assert s.checked == s.found and s.unreadable == 0
        assert splits["TRAIN"].empty == len(written.skipped)            # zero-byte files, counted apart
        loaded = load_chalearn(task, DataConfig(root=str(root["root"])))
        assert splits["TRAIN"].found == len(loaded.train) + len(loaded.val)   # what a run trains on
        assert splits["VALID"].found == len(loaded.test)
    fer = by_split(got["FER2013"])
    for split, (_pixels, labels) in root["fer"].items():
        want = Counter(EMOTIONS[y] for y in labels)
        assert fer[split].found == len(labels) == fer[split].checked
        assert fer[split].labels == {"emotion": {e: want[e] for e in EMOTIONS}}
    imdb, written = by_split(got["IMDB-WIKI (aligned)"]), root["imdb"]
    for split in ("train", "val", "test"):
        ages = [age for _, (age, _g) in written.splits[split]]
        genders = Counter(g for _, (_a, g) in written.splits[split])
        assert imdb[split].found == written.count(split)
        assert imdb[split].labels == {"gender": {n: genders[i] for n, i in GENDER_CLASSES.items()},
                                      "age": decades(ages)}
    assert (imdb["train"].empty, imdb["train"].left_out) == (1, len(written.skipped) - 1)   # 4 names, 1 empty
    loaded = load_imdb_wiki("age", DataConfig(root=str(root["root"])))
    assert imdb["train"].found == len(loaded.train) + len(loaded.val) and imdb["test"].found == len(loaded.test)
    # the tiny copies are far from the release: every split with a reference is flagged, and says so
    problems = report.problems()
    assert any("FER2013 Training: 9 found, fewer than the reference's 28,709" in p for p in problems)
    assert any("ChaLearn age VALID: 6 found, fewer than the reference's 1,356" in p for p in problems)
    assert not any("IMDB-WIKI (aligned) val" in p for p in problems)   # no reference, no comparison


def test_official_release_h5_and_mat_layouts(tmp_path):
    official = write_chalearn_official(tmp_path / "ChaLearn_LAP_2016_age", n_train=5, n_valid=3, n_test=2)
    write_fer2013_h5(tmp_path / "fer" / "data.h5", n_train=4, n_public=2, n_private=3)
    rows = write_imdb_wiki_mat(tmp_path / "imdb_crop", n_good=12)
    data = DataConfig(root=str(tmp_path), chalearn_layout="official", fer2013="fer/data.h5",
                      imdb_wiki_layout="mat")
    parts, _ = datacheck.parts_under(data)
    got = {r.part.name: r for r in datacheck.check(parts).parts}
    ch = by_split(got["ChaLearn age (official release)"])
    for split in ("train", "valid", "test"):
        assert (ch[split].found, ch[split].left_out) == (official.count(split), 1)   # 1 gt row without image
        assert ch[split].labels == {"age": decades(a for _, a in official.splits[split])}
        assert ch[split].expected == REFERENCES["chalearn_official"].counts[split]
    assert [s.found for s in got["FER2013"].splits] == [4, 2, 3]
    mat = by_split(got["IMDB-WIKI imdb.mat"])["rows"]
    kept = [r for r in rows if r.drop is None]
    assert (mat.found, mat.images, mat.left_out) == (len(rows), len(kept), len(rows) - len(kept))
    assert mat.labels["age"] == decades(r.age for r in kept)
    genders = Counter(r.gender for r in kept)
    assert mat.labels["gender"] == {"female": genders[0.0], "male": genders[1.0]}
    assert mat.expected == 460_723 and mat.unreadable == 0 and mat.checked == len(kept)
    (tmp_path / "imdb_crop" / kept[3].rel).unlink()                  # a listed image the copy lacks
    part = next(p for p in parts if p.layout == "mat")
    mat = datacheck.check_part(part).splits[0]
    assert mat.unreadable == 1 and mat.unreadable_files[0].startswith(str(tmp_path / "imdb_crop" / kept[3].rel))


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_a_truncated_image_is_reported_sampled_or_in_full(tmp_path):
    written = write_chalearn_imagefolder(tmp_path / "g", n_per_class=10, zero_byte=0, extras=False)
    victim = sorted(p for p, _ in written.splits["TRAIN"] if p.suffix == ".jpg")[3]
    _truncate(victim)
    part = datacheck.Part("chalearn", "imagefolder", tmp_path / "g", "gender")
    full = by_split(datacheck.check_part(part, full=True))["TRAIN"]
    assert (full.checked, full.unreadable) == (20, 1) and full.unreadable_files[0].startswith(f"{victim}: ")
    sampled = by_split(datacheck.check_part(part, sample=2))["TRAIN"]       # first and last only
    assert (sampled.checked, sampled.unreadable) == (2, 0)
    # through the CLI: the file is named, the exit code is 1 (the default sample covers these 20 images)
    res = call(data_main, ["check", "--data-root", str(tmp_path), "--set", "data.chalearn_gender=g",
                           "--dataset", "chalearn", "--sample", "50"])
    assert res.code == 1 and f"unreadable (TRAIN): {victim}" in res.out, res.out + res.err
    assert "ChaLearn gender TRAIN: 1 of 20 decoded image(s) unreadable" in res.out


def _expect_file(tmp_path: Path, counts: dict) -> Path:
    import yaml

    path = tmp_path / "expect.yaml"
    path.write_text(yaml.safe_dump(counts))
    return path


def test_exact_counts_pass_and_a_partial_copy_exits_1(tmp_path):
    written = write_chalearn_imagefolder(tmp_path / "CVPR_SMILE_5_points", classes=("no", "yes"), zero_byte=0)
    write_fer2013_csv(tmp_path / "fer2013" / "fer2013.csv", n_train=6, n_public=3, n_private=4)
    expect = _expect_file(tmp_path, {"chalearn_smile": {"TRAIN": 6, "VALID": 4},
                                     "fer2013": {"Training": 6, "PublicTest": 3, "PrivateTest": 4}})
    argv = ["check", "--data-root", str(tmp_path), "--expect", str(expect)]
    res = call(data_main, argv)
    assert res.code == 0 and "OK: 2 copies, 5 splits" in res.out, res.out + res.err
    for path, _ in written.splits["VALID"][:2]:                     # a copy that stopped half way
        path.unlink()
    res = call(data_main, argv)
    assert res.code == 1 and "ChaLearn smile VALID: 2 found, fewer than the reference's 4" in res.out, res.out
    report = json.loads(call(data_main, [*argv, "--json"]).out)
    assert report["ok"] is False and len(report["problems"]) == 1
    assert [p["name"] for p in report["absent"]] == ["ChaLearn gender", "ChaLearn age", "IMDB-WIKI (aligned)"]
    # the library with a test-only table: an exact match passes, one image more or less does not
    part = datacheck.Part("fer2013", "csv", tmp_path / "fer2013" / "fer2013.csv")
    exact = {"fer2013": Reference({"Training": 6, "PublicTest": 3, "PrivateTest": 4}, "rows", "test")}
    assert datacheck.check([part], references=exact).ok
    off = {"fer2013": Reference({"Training": 7, "PublicTest": 3, "PrivateTest": 4}, "rows", "test")}
    assert datacheck.check([part], references=off).problems() == [
        "FER2013 Training: 6 found, fewer than the reference's 7: a partial or wrong copy"]


def test_the_study_file_checks_the_copies_its_runs_read(tmp_path, root):
    exp = tmp_path / "study.yaml"
    exp.write_text(f"defaults: {{dataset: CVPR_16_ChaLearn, backbone_weights: none}}\n"
                   f"experiments:\n  - {{name: AlexNet-Gender, loss_weights: [1, 0, 0, 0]}}\n"
                   f"  - {{name: AlexNet-Emotion, loss_weights: [0, 0, 1, 0]}}\n"
                   f"clusters:\n  here: {{executor: local, data_root: {root['root']}}}\n")
    res = call(data_main, ["check", str(exp), "--cluster", "here", "--json"])
    assert res.code == 1, res.err                                     # the tiny copies are not the release
    assert [p["name"] for p in json.loads(res.out)["parts"]] == ["ChaLearn gender", "FER2013"]


def test_bad_input_is_one_line_and_exit_2(tmp_path, root):
    cases = [
        (["check", "--data-root", str(tmp_path / "nowhere")], "does not exist"),
        (["check", "--data-root", str(root["root"]), "--dataset", "mnist"], "unknown dataset; valid: chalearn"),
        (["check"], "nothing to check: give experiments.yaml --cluster NAME"),
        (["verify", "--data-root", str(tmp_path)], "invalid choice"),
        (["check", "--data-root", str(tmp_path / "empty")], "no dataset found under"),
        (["check", "--data-root", str(root["root"]), "--sample", "0"], "--sample: must be >= 1"),
        (["check", "--data-root", str(root["root"]), "--expect", str(_expect_file(tmp_path, {"mnist": {"x": 1}}))],
         "mnist: unknown copy; valid: chalearn_gender"),
        (["check", str(tmp_path / "missing.yaml"), "--cluster", "x"], "missing.yaml"),
    ]
    (tmp_path / "empty").mkdir()
    for argv, needle in cases:
        assert_one_line_error(call(data_main, argv), "data", needle)
    exp = tmp_path / "e.yaml"
    study = "experiments:\n  - {name: A, dataset: CVPR_16_ChaLearn}\n"
    exp.write_text(study + "clusters:\n  here: {executor: local, data_root: /nowhere/at/all, data_counts: maybe}\n")
    assert_one_line_error(call(data_main, ["check", str(exp), "--cluster", "here"]), "data",
                          "data_counts: 'maybe'; valid: warn, refuse, off")
    exp.write_text(study + "clusters:\n  here: {executor: local, data_root: /nowhere/at/all, data_counts: off}\n")
    assert_one_line_error(call(data_main, ["check", str(exp), "--cluster", "here"]), "data",
                          "clusters.here.data_root /nowhere/at/all does not exist on this host")
    assert "--traceback" in call(data_main, ["--help"]).out


def _study(tmp_path: Path, data_root: Path, counts: str) -> Path:
    exp = tmp_path / f"study_{counts}.yaml"
    exp.write_text(f"defaults: {{dataset: CVPR_16_ChaLearn, backbone_weights: none, epoch: 1}}\n"
                   f"experiments:\n  - {{name: AlexNet-Smile, loss_weights: [0, 1, 0, 0]}}\n"
                   f"clusters:\n  here: {{executor: local, data_root: {data_root}, data_counts: {counts}}}\n")
    return exp


def test_preflight_warns_or_refuses_a_partial_copy(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    write_chalearn_imagefolder(tmp_path / "data" / "CVPR_SMILE_5_points", classes=("no", "yes"))
    dirs = ["--results", str(tmp_path / "results"), "--jobs-dir", str(tmp_path / "jobs")]
    # warn (the default): the tiny test copy launches, with one line per short split
    assert launch_main([str(_study(tmp_path, tmp_path / "data", "warn")), "--cluster", "here", "--dry-run", *dirs]) == 0
    err = capsys.readouterr().err
    assert "mtl-launch: warning: ChaLearn smile TRAIN at" in err and "6 images, 0% of the 4,548" in err, err
    assert "(clusters.here.data_counts: warn)" in err
    # refuse: nothing runs, one line names the copy and how to go on
    res = call(launch_main, [str(_study(tmp_path, tmp_path / "data", "refuse")), "--cluster", "here", *dirs])
    line = assert_one_line_error(res, "launch", "preflight: ChaLearn smile TRAIN", "4,548", "--no-preflight")
    assert "mtl-data check" in line and not (tmp_path / "results").exists()
    # off: not a word
    assert launch_main([str(_study(tmp_path, tmp_path / "data", "off")), "--cluster", "here", "--dry-run", *dirs]) == 0
    assert "warning" not in capsys.readouterr().err


def test_preflight_flags_only_a_copy_far_below_the_reference(tmp_path):
    write_chalearn_imagefolder(tmp_path / "s", classes=("no", "yes"), n_per_class=20, n_valid_per_class=20,
                               zero_byte=0, extras=False)
    part = datacheck.Part("chalearn", "imagefolder", tmp_path / "s", "smile")
    near = {"chalearn_smile": Reference({"TRAIN": 41, "VALID": 40}, "images", "test")}    # 1 missing: 97.6%
    assert datacheck.shortfalls([part], near) == []
    assert not datacheck.check([part], references=near).ok                     # mtl-data check still says so
    far = {"chalearn_smile": Reference({"TRAIN": 80, "VALID": 40}, "images", "test")}     # half a copy
    flagged = datacheck.shortfalls([part], far)
    assert [line.split(":")[0] for line in flagged] == [f"ChaLearn smile TRAIN at {part.path}"]
    write_image(tmp_path / "s" / "TRAIN" / "yes" / "late.jpg")
    assert datacheck.shortfalls([part], {"chalearn_smile": Reference({"TRAIN": 41}, "images", "test")}) == []


def test_a_copy_its_loader_would_refuse_is_a_problem_of_that_copy(tmp_path):
    """A third gender class folder, a FER2013 row cut short: each copy says what is wrong, the others are still
    checked, and the exit code is 1 (the data is wrong, the command line is not)."""
    write_chalearn_imagefolder(tmp_path / "CVPR_GENDER_5_points", zero_byte=0)
    write_image(tmp_path / "CVPR_GENDER_5_points" / "TRAIN" / "unknown" / "x.jpg")
    csv = tmp_path / "fer2013" / "fer2013.csv"
    write_fer2013_csv(csv)
    lines = csv.read_text().splitlines()
    emotion, pixels, usage = lines[3].split(",")
    lines[3] = ",".join([emotion, " ".join(pixels.split()[:100]), usage])
    csv.write_text("\n".join(lines) + "\n")
    write_imdb_wiki_aligned(tmp_path / "imdb_wiki", zero_byte=0)
    report = json.loads(call(data_main, ["check", "--data-root", str(tmp_path), "--json"]).out)
    errors = {p["name"]: p["error"] for p in report["parts"]}
    assert "has 3 class folders (female, male, unknown); expected 2" in errors["ChaLearn gender"]
    assert "line 4: 100 pixel values, expected 2304" in errors["FER2013"]
    assert [s["found"] for p in report["parts"] if p["name"] == "FER2013" for s in p["splits"]] == [6, 3, 4]
    assert errors["IMDB-WIKI (aligned)"] is None
    res = call(data_main, ["check", "--data-root", str(tmp_path)])
    assert res.code == 1 and "✗ FER2013" in res.out and "✗ ChaLearn gender" in res.out, res.out

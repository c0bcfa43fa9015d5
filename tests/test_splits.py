"""Three roles per dataset: train, select (val) and report (test), and the hashed hold-out behind them.

The hold-out must be the same on every run and machine and after copying the data elsewhere, and
must never move an image because another one was added: otherwise a model could be selected on
images it was trained on in an earlier run.
"""
from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from mtl_cluster.config import DataConfig, TrainConfig
from mtl_cluster.train.data import load_task, train_sizes
from mtl_cluster.train.data.base import in_holdout, percent, split_holdout
from mtl_cluster.train.data.chalearn import load_chalearn
from mtl_cluster.train.data.fer2013 import fer2013_train_size, load_fer2013
from mtl_cluster.train.data.imdb_wiki import aligned_person, in_val_split, load_imdb_wiki, mat_person
from mtl_cluster.train.data.synthetic import load_synthetic, synthetic_sample
from formats import (fer2013_arrays, write_chalearn_imagefolder, write_chalearn_official, write_fer2013_csv,
                     write_fer2013_h5, write_image, write_imdb_wiki_aligned, write_imdb_wiki_aligned_people,
                     write_imdb_wiki_mat)

KEYS20 = [f"{c}/img_{i:03d}.jpg" for c in ("female", "male") for i in range(10)]
# Computed once from blake2b("holdout\0" + key): a change of hash, salt or threshold fails here.
HELD_OUT_30 = ["female/img_001.jpg", "female/img_003.jpg", "female/img_006.jpg", "female/img_008.jpg",
               "male/img_000.jpg", "male/img_006.jpg", "male/img_008.jpg"]


def _unit(key: str, salt: str = "holdout") -> float:
    """The documented rule, written out independently of the code under test."""
    digest = hashlib.blake2b(f"{salt}\0{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def _person(file_name: str) -> str:
    """The documented aligned IMDB-WIKI identity, written out independently: the name after
    ``<age>_<gender>_``, without its suffix and a number glued to it, lower-cased."""
    stem = file_name.split("_", 2)[2].rsplit(".", 1)[0]
    return re.sub(r"([^0-9_])[0-9]+$", r"\1", stem).lower()


def _rel(images, base: Path) -> list[str]:
    return [p.relative_to(base).as_posix() for p in images.paths]


def _labels(images) -> dict[str, float]:
    return {p.name: float(y) for p, y in zip(images.paths, images.labels)}


# --- the hashed hold-out ---------------------------------------------------------------------------

def test_holdout_known_answer() -> None:
    assert [k for k in KEYS20 if in_holdout(k, 0.3)] == HELD_OUT_30
    assert [k for k, m in zip(KEYS20, split_holdout(KEYS20, 0.3)) if m] == HELD_OUT_30
    assert [k for k in KEYS20 if _unit(k) < 0.3] == HELD_OUT_30
    other = [k for k in KEYS20 if in_holdout(k, 0.3, salt="other")]
    assert other == [k for k in KEYS20 if _unit(k, "other") < 0.3] and other != HELD_OUT_30


def test_holdout_near_fraction_and_monotone() -> None:
    keys = [f"{i % 7}/face_{i:05d}.jpg" for i in range(2000)]
    for fraction in (0.05, 0.1, 0.3):
        share = np.mean(split_holdout(keys, fraction))
        assert abs(share - fraction) < 0.025, (fraction, share)
    small, large = split_holdout(keys, 0.1), split_holdout(keys, 0.2)
    assert all(b for a, b in zip(small, large) if a)            # a larger fraction only adds items


def test_adding_a_key_moves_no_other() -> None:
    keys = [f"x/{i}.jpg" for i in range(300)]
    before = split_holdout(keys, 0.1)
    after = split_holdout(keys + ["x/new.jpg", "y/0.jpg"], 0.1)
    assert after[:300] == before


@pytest.mark.parametrize("keys, fraction", [(["a.jpg", "b.jpg"], 0.0), (KEYS20, 1e-9), (KEYS20[:3], 0.0)])
def test_at_least_one_held_out(keys: list[str], fraction: float) -> None:
    mask = split_holdout(keys, fraction)
    assert sum(mask) == 1
    assert keys[mask.index(True)] == min(keys, key=_unit)      # the smallest hash


@pytest.mark.parametrize("keys", [["a.jpg", "b.jpg"], KEYS20])
def test_at_least_one_left_for_training(keys: list[str]) -> None:
    mask = split_holdout(keys, 1.0)
    assert mask.count(False) == 1 and keys[mask.index(False)] == max(keys, key=_unit)


def test_holdout_of_one_or_none() -> None:
    assert split_holdout(["a.jpg"], 0.99) == [False] and split_holdout(["a.jpg"], 0.0) == [False]
    assert split_holdout([], 0.5) == []
    assert (percent(0.1), percent(0.05), percent(0.025), percent(0.07)) == ("10%", "5%", "2.5%", "7%")


# --- ChaLearn, the group's copy ----------------------------------------------------------------------

def _chalearn_tree(root: Path, n: int = 12) -> None:
    write_chalearn_imagefolder(root, n_per_class=n, n_valid_per_class=2, zero_byte=0, extras=False)


def test_chalearn_holdout_is_independent_of_the_data_root(tmp_path: Path) -> None:
    a, b = tmp_path / "a" / "g", tmp_path / "elsewhere" / "deeper" / "g"
    _chalearn_tree(a)
    shutil.copytree(a, b)
    da = load_chalearn("gender", DataConfig(root=str(tmp_path / "a"), chalearn_gender="g"))
    db = load_chalearn("gender", DataConfig(chalearn_gender=str(b)))
    assert _rel(da.val, a / "TRAIN") == _rel(db.val, b / "TRAIN") and len(da.val) >= 1
    assert _rel(da.train, a / "TRAIN") == _rel(db.train, b / "TRAIN")
    keys = sorted(p.name for p in da.train.paths + da.val.paths)          # the file name, not female/x.jpg
    assert sorted(p.name for p in da.val.paths) == [k for k, m in zip(keys, split_holdout(keys, 0.1)) if m]
    again = load_chalearn("gender", DataConfig(root=str(tmp_path / "a"), chalearn_gender="g"))
    assert again.val.paths == da.val.paths                        # stable across runs
    assert da.train.identity() == db.train.identity() and da.val.identity() == db.val.identity()


def test_chalearn_adding_an_image_moves_no_other(tmp_path: Path) -> None:
    root = tmp_path / "g"
    _chalearn_tree(root)
    data = DataConfig(root=str(tmp_path), chalearn_gender="g")
    before = load_chalearn("gender", data)
    write_image(root / "TRAIN" / "male" / "a_new_face.jpg", seed=99)
    after = load_chalearn("gender", data)
    assert set(before.val.paths) <= set(after.val.paths) and set(before.train.paths) <= set(after.train.paths)
    assert len(after.train) + len(after.val) == len(before.train) + len(before.val) + 1


def test_chalearn_imagefolder_roles(tmp_path: Path) -> None:
    root = tmp_path / "g"
    written = write_chalearn_imagefolder(root, n_per_class=20, n_valid_per_class=3, zero_byte=0, extras=False)
    td = load_chalearn("gender", DataConfig(root=str(tmp_path), chalearn_gender="g", holdout_fraction=0.25))
    assert (td.val_split, td.test_split) == ("TRAIN hold-out 25%", "VALID")
    keys = [p.name for p, _ in written.splits["TRAIN"]]                   # the file name, not female/x.jpg
    assert sorted(p.name for p in td.val.paths) == sorted(k for k in keys if _unit(k) < 0.25)
    assert sorted(td.test.paths) == sorted(p for p, _ in written.splits["VALID"])


# --- ChaLearn: one hold-out for every task that sees an image ---------------------------------------

GROUP_COPIES = {"gender": ("CVPR_GENDER_5_points", ("female", "male")),
                "smile": ("CVPR_SMILE_5_points", ("no", "yes")),
                "age": ("CVPR_AGE_5_points", ("21", "34", "58"))}


def _group_copies(root: Path, names: list[str]) -> dict[str, dict[str, str]]:
    """The group's three copies of the same TRAIN images: every name in each task's TRAIN, in a class
    folder that depends on the task (the labels differ), plus a small VALID. Task -> name -> class."""
    where: dict[str, dict[str, str]] = {}
    for t, (task, (folder, classes)) in enumerate(GROUP_COPIES.items()):
        where[task] = {name: classes[(i // (t + 1)) % len(classes)] for i, name in enumerate(names)}
        for i, name in enumerate(names):
            write_image(root / folder / "TRAIN" / where[task][name] / name, seed=i)
        for c, cls in enumerate(classes):
            write_image(root / folder / "VALID" / cls / f"valid_{c:03d}.jpg", seed=500 + c)
    return where


def test_chalearn_tasks_hold_out_the_same_images(tmp_path: Path) -> None:
    names = [f"{i:06d}.jpg" for i in range(72)]
    where = _group_copies(tmp_path, names)
    cfg = _cfg("CVPR_16_ChaLearn", DataConfig(root=str(tmp_path)))
    held: dict[str, set[str]] = {}
    for task in GROUP_COPIES:
        td = load_task(task, cfg)
        assert sorted(p.name for p in td.train.paths + td.val.paths) == names        # each image once
        assert all(p.parent.name == where[task][p.name] for p in td.train.paths + td.val.paths)
        held[task] = {p.name for p in td.val.paths}
    assert held["gender"] == held["smile"] == held["age"]                        # all tasks or none
    assert held["gender"] == {n for n in names if _unit(n) < 0.1} and 3 <= len(held["gender"]) < 20
    # What the old key (class folder/file name) did with this very tree: a hold-out per task, so that
    # smile validated on images gender trained on (through the shared trunk).
    old = {task: {n for n in names if _unit(f"{where[task][n]}/{n}") < 0.1} for task in GROUP_COPIES}
    assert old["smile"] - old["gender"] and old["age"] - old["gender"] and old["gender"] != old["smile"]


def test_chalearn_forced_pick_and_a_repeated_name_agree(tmp_path: Path) -> None:
    """Where the threshold picks none (or all), the forced pick is the same image in every task, and a
    name in two class folders of one task (a mislabelled duplicate) has both copies on one side."""
    names = ["a.jpg", "b.jpg", "c.jpg", "d.jpg"]
    where = _group_copies(tmp_path, names)
    low, high = min(names, key=_unit), max(names, key=_unit)
    for name in (low, high):                     # a twin in gender's other class folder
        other = next(c for c in GROUP_COPIES["gender"][1] if c != where["gender"][name])
        write_image(tmp_path / "CVPR_GENDER_5_points" / "TRAIN" / other / name, seed=9)
    for fraction, forced, side in ((1e-9, low, "val"), (1 - 1e-9, high, "train")):
        cfg = _cfg("CVPR_16_ChaLearn", DataConfig(root=str(tmp_path), holdout_fraction=fraction))
        for task in GROUP_COPIES:
            td = load_task(task, cfg)
            picked = [p.name for p in getattr(td, side).paths]
            assert set(picked) == {forced}
            assert len(picked) == (2 if task == "gender" else 1)                     # the twin follows


def test_repeated_keys_stay_together() -> None:
    keys = ["x.jpg", "y.jpg", "x.jpg", "z.jpg", "y.jpg", "x.jpg"]
    for fraction in (0.0, 1e-9, 0.3, 0.7, 1.0):
        mask = split_holdout(keys, fraction)
        assert all(len({m for k2, m in zip(keys, mask) if k2 == k}) == 1 for k in keys), fraction
        assert any(mask) and not all(mask)
    assert split_holdout(["x.jpg"] * 3, 0.0) == split_holdout(["x.jpg"] * 3, 1.0) == [False] * 3


# --- ChaLearn official ----------------------------------------------------------------------------------

def test_chalearn_official_uses_test_when_present(tmp_path: Path) -> None:
    written = write_chalearn_official(tmp_path / "off", n_train=6, n_valid=3, n_test=4, missing=1)
    td = load_chalearn("age", DataConfig(root=str(tmp_path), chalearn_layout="official", chalearn_official="off"))
    assert (td.val_split, td.test_split) == ("valid", "test")
    for images, split in ((td.train, "train"), (td.val, "valid"), (td.test, "test")):
        assert images.paths == [p for p, _ in written.splits[split]]
        assert images.labels.tolist() == [m for _, m in written.splits[split]]
        assert images.sigma.dtype == np.float64
        assert images.sigma.tolist() == [written.sigma[p] for p in images.paths]
    assert td.skipped_at_load == 3                                 # one missing image per gt file


def test_chalearn_official_holds_out_train_without_test(tmp_path: Path) -> None:
    written = write_chalearn_official(tmp_path / "off", n_train=30, n_valid=3, missing=0, test=False)
    data = DataConfig(root=str(tmp_path), chalearn_layout="official", chalearn_official="off")
    td = load_chalearn("age", data)
    assert (td.val_split, td.test_split) == ("train hold-out 10%", "valid")
    train = {p: m for p, m in written.splits["train"]}
    assert {**dict(zip(td.train.paths, td.train.labels)), **dict(zip(td.val.paths, td.val.labels))} == train
    assert [p.name for p in td.val.paths] == [p.name for p in train if _unit(p.name) < 0.1]
    assert td.test.paths == [p for p, _ in written.splits["valid"]]
    for images in (td.train, td.val, td.test):
        assert images.sigma.tolist() == [written.sigma[p] for p in images.paths]   # sigma follows the subset
    (tmp_path / "off" / "test").mkdir()                           # images without labels: still held out
    assert load_chalearn("age", data).test_split == "valid"


def test_chalearn_official_without_stdv_column(tmp_path: Path) -> None:
    write_chalearn_official(tmp_path / "off", n_train=4, n_valid=2, n_test=2, missing=0)
    for split in ("train", "valid", "test"):
        gt = tmp_path / "off" / f"{split}_gt.csv"
        gt.write_text("\n".join(",".join(line.split(",")[:2]) for line in gt.read_text().splitlines()) + "\n")
    td = load_chalearn("age", DataConfig(root=str(tmp_path), chalearn_layout="official", chalearn_official="off"))
    assert td.train.sigma is None and td.val.sigma is None and td.test.sigma is None
    assert len(td.test) == 2


# --- FER2013 ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["csv", "h5"])
@pytest.mark.parametrize("report, select", [("PrivateTest", "PublicTest"), ("PublicTest", "PrivateTest")])
def test_fer_select_and_report(tmp_path: Path, fmt: str, report: str, select: str) -> None:
    data = fer2013_arrays(n_train=5, n_public=3, n_private=4, seed=2)
    (write_fer2013_csv if fmt == "csv" else write_fer2013_h5)(tmp_path / f"fer.{fmt}", data)
    td = load_fer2013(DataConfig(root=str(tmp_path), fer2013=f"fer.{fmt}", fer2013_eval_split=report))
    assert (td.val_split, td.test_split) == (select, report)
    for images, split in ((td.train, "Training"), (td.val, select), (td.test, report)):
        np.testing.assert_array_equal(images.pixels, data[split][0])
        np.testing.assert_array_equal(images.labels, data[split][1])


def test_fer_default_selects_on_public_and_reports_private(tmp_path: Path) -> None:
    write_fer2013_csv(tmp_path / "fer2013" / "fer2013.csv")
    td = load_fer2013(DataConfig(root=str(tmp_path)))
    assert (td.val_split, td.test_split, len(td.val), len(td.test)) == ("PublicTest", "PrivateTest", 3, 4)


# --- IMDB-WIKI -------------------------------------------------------------------------------------

def test_imdb_wiki_aligned_without_test_reports_val(tmp_path: Path) -> None:
    written = write_imdb_wiki_aligned(tmp_path / "imdb_wiki", n_train=25, n_val=4)
    td = load_imdb_wiki("age", DataConfig(root=str(tmp_path)))
    assert (td.val_split, td.test_split) == ("train hold-out 10%", "val")
    assert td.test.paths == sorted(p for p, _ in written.splits["val"])
    names = sorted(p.name for p, _ in written.splits["train"])
    assert [p.name for p in td.val.paths] == [n for n in names if _unit(_person(n)) < 0.1]   # by person
    assert sorted(p.name for p in td.train.paths + td.val.paths) == names


def test_imdb_wiki_aligned_with_test(tmp_path: Path) -> None:
    written = write_imdb_wiki_aligned(tmp_path / "imdb_wiki", n_train=25, n_val=4, n_test=5)
    a = load_imdb_wiki("gender", DataConfig(root=str(tmp_path)))
    assert (a.val_split, a.test_split) == ("train hold-out 10%", "test")
    assert a.test.paths == sorted(p for p, _ in written.splits["test"])
    assert not {p.parent.name for p in a.train.paths + a.val.paths + a.test.paths} & {"val"}
    shutil.copytree(tmp_path / "imdb_wiki", tmp_path / "copy" / "imdb")
    b = load_imdb_wiki("gender", DataConfig(root=str(tmp_path / "copy"), imdb_wiki="imdb"))
    assert [p.name for p in a.val.paths] == [p.name for p in b.val.paths]


def test_imdb_wiki_mat_three_way_split(tmp_path: Path) -> None:
    rows = write_imdb_wiki_mat(tmp_path / "imdb_crop", n_good=60)   # more: writer ages go negative
    kept = sorted(r.rel for r in rows if r.drop is None)
    data = DataConfig(root=str(tmp_path), imdb_wiki_layout="mat", imdb_wiki_val_fraction=0.2, holdout_fraction=0.25)
    td = load_imdb_wiki("age", data)
    assert (td.val_split, td.test_split) == ("train hold-out 25%", "test (hashed 20%)")
    base = tmp_path / "imdb_crop"
    train, val, test = (set(_rel(s, base)) for s in (td.train, td.val, td.test))
    assert not train & val and not train & test and not val & test
    assert train | val | test == set(kept)
    person = {k: k.rsplit("/", 1)[1].split("_")[0] for k in kept}          # nm0000001: the person
    assert test == {k for k in kept if in_val_split(k, 0.2)}
    assert test == {k for k in kept if int.from_bytes(hashlib.blake2b(person[k].encode(), digest_size=8)
                                                      .digest(), "big") / 2.0**64 < 0.2}
    rest = [k for k in kept if k not in test]
    assert val == {k for k, m in zip(rest, split_holdout([person[k] for k in rest], 0.25)) if m}
    assert val != {k for k in rest if in_val_split(k, 0.2 + 0.25 * 0.8)}   # a second, independent hash
    assert min(len(train), len(val), len(test)) > 0
    gender = load_imdb_wiki("gender", data)
    assert gender.val.paths == td.val.paths and gender.test.paths == td.test.paths


def test_aligned_person_rule() -> None:
    assert aligned_person("35_1_TomHanks.jpg") == aligned_person("41_1_TomHanks4821.jpg") == "tomhanks"
    assert aligned_person("30_0_Mary_Ann_Smith.jpg") == "mary_ann_smith"          # underscores in names
    assert aligned_person("30_0_Jane_Q_Doe_0003.jpg") == "jane_q_doe_0003"        # not a glued number
    assert aligned_person("20_1_007.jpg") == "007"
    assert mat_person("01/nm0000001_rm124825600_1899-5-27_1968.jpg") == "nm0000001"
    assert mat_person("17/10000217_1981-05-05_2009.jpg") == "10000217"


@pytest.mark.parametrize("with_test", [True, False])
def test_imdb_wiki_aligned_splits_by_person(tmp_path: Path, with_test: bool) -> None:
    written, person = write_imdb_wiki_aligned_people(tmp_path / "imdb_wiki", n_people=30, n_images=4,
                                                     test=with_test)
    report = "test" if with_test else "val"
    train_files = sorted(p for p, _ in written.splits["train"])
    for task in ("age", "gender"):
        td = load_imdb_wiki(task, DataConfig(root=str(tmp_path)))
        assert (td.val_split, td.test_split) == ("train hold-out 10%", report)
        assert sorted(td.train.paths + td.val.paths) == train_files
        assert sorted(td.test.paths) == sorted(p for p, _ in written.splits[report])
        people = {s: {person[p] for p in getattr(td, s).paths} for s in ("train", "val", "test")}
        assert not people["train"] & people["val"]
        assert not people["train"] & people["test"] and not people["val"] & people["test"]
        assert people["val"] == {q for q in people["train"] | people["val"] if _unit(q.lower()) < 0.1}
        assert len(people["val"]) >= 2 and len(td.val) == 4 * len(people["val"])   # whole persons
    # Keyed by file, as before, the same tree put some person in train and in val.
    by_file = [_unit(p.name) < 0.1 for p in train_files]
    assert {person[p] for p, v in zip(train_files, by_file) if v} & \
           {person[p] for p, v in zip(train_files, by_file) if not v}


def test_imdb_wiki_mat_splits_by_person(tmp_path: Path) -> None:
    from scipy.io import loadmat, savemat

    base = tmp_path / "imdb_crop"
    rows = write_imdb_wiki_mat(base, n_good=60)
    mat = loadmat(str(base / "imdb.mat"))
    fields = {k: mat["imdb"][0, 0][k] for k in mat["imdb"].dtype.names}
    paths = fields["full_path"].copy()
    person: dict[str, str] = {}
    for j, row in enumerate(rows):            # four rows per person, in four NN/ folders, as the release has
        folder, file = row.rel.split("/")
        rel = f"{folder}/nm{j // 4:07d}{file[len('nm0000000'):]}"
        (base / row.rel).rename(base / rel)
        paths[0, j] = np.array([rel])
        person[rel] = f"nm{j // 4:07d}"
    fields["full_path"] = paths
    savemat(str(base / "imdb.mat"), {"imdb": fields})
    data = DataConfig(root=str(tmp_path), imdb_wiki_layout="mat", imdb_wiki_val_fraction=0.2, holdout_fraction=0.25)
    td = load_imdb_wiki("age", data)
    people = {s: {person[r] for r in _rel(getattr(td, s), base)} for s in ("train", "val", "test")}
    assert min(len(v) for v in people.values()) >= 1
    assert not people["train"] & people["val"] and not people["train"] & people["test"]
    assert not people["val"] & people["test"]
    kept = [r for r in person if (base / r) in set(td.train.paths + td.val.paths + td.test.paths)]
    old_test = {r for r in kept if int.from_bytes(hashlib.blake2b(r.encode(), digest_size=8).digest(),
                                                  "big") / 2.0**64 < 0.2}            # the old per-path key
    assert {person[r] for r in old_test} & {person[r] for r in kept if r not in old_test}


# --- synthetic -------------------------------------------------------------------------------------

def test_synthetic_val_and_test_differ_and_train_is_unchanged() -> None:
    data = DataConfig(synthetic_train_size=40, synthetic_eval_size=12)
    td = load_synthetic("emotion", data, seed=3, image_size=32)
    assert (td.val_split, td.test_split) == ("val", "test") and len(td.val) == len(td.test) == 12
    val, test = ({img.tobytes() for img in s.pixels} for s in (td.val, td.test))
    assert not val & test
    train_px, train_lab = synthetic_sample(3, 40, 32, "train")
    assert np.array_equal(td.train.pixels, train_px) and np.array_equal(td.train.labels, train_lab["emotion"])


def test_synthetic_train_and_val_streams_kept() -> None:
    """The first draws of seed 7, as they were before the test split existed (labels: numpy only)."""
    draw = synthetic_sample.__wrapped__
    _, train = draw(7, 6, 32, "train")
    _, val = draw(7, 6, 32, "val")
    assert train["age"].tolist() == [6, 6, 49, 7, 58, 75] and train["emotion"].tolist() == [1, 2, 5, 2, 0, 1]
    assert val["age"].tolist() == [56, 57, 37, 14, 11, 95] and val["emotion"].tolist() == [0, 6, 5, 4, 5, 6]


# --- train_sizes -----------------------------------------------------------------------------------

def _cfg(dataset: str, data: DataConfig) -> TrainConfig:
    return TrainConfig(dataset=dataset, data=data)


def test_train_sizes_synthetic_draws_nothing(monkeypatch) -> None:
    import mtl_cluster.train.data.synthetic as synthetic

    monkeypatch.setattr(synthetic, "synthetic_sample", lambda *a: pytest.fail("drew images"))
    data = DataConfig(synthetic_train_size=77)
    assert train_sizes(_cfg("synthetic", data)) == dict.fromkeys(("gender", "smile", "emotion", "age"), 77)
    stand_in = DataConfig(synthetic=True, synthetic_train_size=33)
    assert train_sizes(_cfg("IMDB-WIKI", stand_in)) == {"gender": 33, "age": 33}
    assert train_sizes(_cfg("CVPR_16_ChaLearn", stand_in)) == dict.fromkeys(("gender", "smile", "emotion", "age"), 33)


def test_train_sizes_chalearn_and_fer(tmp_path: Path, monkeypatch) -> None:
    write_chalearn_imagefolder(tmp_path / "CVPR_GENDER_5_points", n_per_class=10, zero_byte=0)
    write_chalearn_imagefolder(tmp_path / "CVPR_SMILE_5_points", classes=("no", "yes"), n_per_class=7)
    write_fer2013_csv(tmp_path / "fer2013" / "fer2013.csv", n_train=9)       # no age folder: None
    cfg = _cfg("CVPR_16_ChaLearn", DataConfig(root=str(tmp_path)))
    import mtl_cluster.train.data.fer2013 as fer

    monkeypatch.setattr(fer, "_csv_pixels", lambda *a: pytest.fail("decoded pixels"))
    sizes = train_sizes(cfg)
    monkeypatch.undo()
    assert sizes == {"gender": len(load_task("gender", cfg).train), "smile": len(load_task("smile", cfg).train),
                     "emotion": 9, "age": None}
    assert sizes["gender"] < 20 and sizes["smile"] < 14                 # after the hold-out
    assert sizes["emotion"] == len(load_task("emotion", cfg).train)
    official = _cfg("CVPR_16_ChaLearn", DataConfig(root=str(tmp_path), chalearn_layout="official"))
    write_chalearn_official(tmp_path / "ChaLearn_LAP_2016_age", n_train=5)
    assert train_sizes(official) == {"gender": None, "smile": None, "emotion": 9, "age": 5}


@pytest.mark.parametrize("fmt", ["csv", "csv-crlf", "csv-usage-first", "h5"])
def test_fer_fast_count_agrees_with_the_full_load(tmp_path: Path, fmt: str) -> None:
    data = fer2013_arrays(n_train=11, n_public=2, n_private=3, seed=4)
    path = tmp_path / ("fer.h5" if fmt == "h5" else "fer.csv")
    (write_fer2013_h5 if fmt == "h5" else write_fer2013_csv)(path, data)
    if fmt == "csv-crlf":
        path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    if fmt == "csv-usage-first":     # another column order: counted through the csv module
        lines = [line.split(",") for line in path.read_text().splitlines()]
        path.write_text("".join(f"{u},{e},{p}\n" for e, p, u in lines))
    cfg = DataConfig(root=str(tmp_path), fer2013=path.name)
    assert fer2013_train_size(cfg) == len(load_fer2013(cfg).train) == 11


def test_fer_fast_count_on_a_bad_file_is_none(tmp_path: Path) -> None:
    path = tmp_path / "fer2013" / "fer2013.csv"
    write_fer2013_csv(path, n_train=0)
    cfg = _cfg("CVPR_16_ChaLearn", DataConfig(root=str(tmp_path)))
    assert train_sizes(cfg)["emotion"] is None                        # no Training rows
    path.write_text("label,pixels\n1,2 3\n")
    assert train_sizes(cfg)["emotion"] is None                        # no Usage column


def test_train_sizes_imdb_wiki(tmp_path: Path) -> None:
    write_imdb_wiki_aligned(tmp_path / "imdb_wiki", n_train=20, n_val=3)
    aligned = _cfg("IMDB-WIKI", DataConfig(root=str(tmp_path)))
    n = len(load_task("age", aligned).train)
    assert train_sizes(aligned) == {"gender": n, "age": n} and n == len(load_task("gender", aligned).train)
    write_imdb_wiki_mat(tmp_path / "imdb_crop", n_good=40)
    mat = _cfg("IMDB-WIKI", DataConfig(root=str(tmp_path), imdb_wiki_layout="mat"))
    n = len(load_task("gender", mat).train)
    assert train_sizes(mat) == {"gender": n, "age": n}
    missing = _cfg("IMDB-WIKI", DataConfig(root=str(tmp_path / "nowhere")))
    assert train_sizes(missing) == {"gender": None, "age": None}

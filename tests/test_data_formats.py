"""The real dataset formats, written small by tests/formats.py and read back through the loaders."""
from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from mtl_cluster.config import DataConfig
from mtl_cluster.errors import DataError
from mtl_cluster.tasks import EMOTIONS
from mtl_cluster.train.data.base import ImageSet, TaskData
from mtl_cluster.train.data.chalearn import load_chalearn
from mtl_cluster.train.data.fer2013 import load_fer2013
from mtl_cluster.train.data.imdb_wiki import (clean_mask, in_val_split, load_imdb_wiki, mat_ages,
                                              read_imdb_wiki_mat)
from formats import (fer2013_arrays, matlab_datenum, usual_age, write_chalearn_imagefolder,
                     write_chalearn_official, write_fer2013_csv, write_fer2013_h5, write_image,
                     write_imdb_wiki_aligned, write_imdb_wiki_mat)


def config(tmp_path: Path, **kw) -> DataConfig:
    return DataConfig(root=str(tmp_path), **kw)


def raises_one_line(fn: Callable[[], object], *parts: object) -> str:
    """Run fn, expect a DataError whose message is one line containing every part."""
    with pytest.raises(DataError) as info:
        fn()
    message = str(info.value)
    assert "\n" not in message
    for part in parts:
        assert str(part) in message, f"{part!r} not in {message!r}"
    return message


def assert_rgb(images: ImageSet, i: int = 0) -> None:
    image = images.image(i)
    assert image.mode == "RGB" and min(image.size) > 0


def paths_labels(images: ImageSet) -> dict[Path, float]:
    return dict(zip(images.paths, images.labels.tolist()))


# --- ChaLearn imagefolder ---------------------------------------------------------------------------

@pytest.mark.parametrize("task, folder, classes", [
    ("gender", "CVPR_GENDER_5_points", ("female", "male")),
    ("smile", "CVPR_SMILE_5_points", ("smile", "no_smile")),
])
def test_chalearn_imagefolder_binary(tmp_path, task, folder, classes):
    written = write_chalearn_imagefolder(tmp_path / folder, classes=classes, n_per_class=4,
                                         n_valid_per_class=2, zero_byte=2)
    td = load_chalearn(task, config(tmp_path))
    mapping = {name: i for i, name in enumerate(sorted(classes))}
    assert isinstance(td, TaskData) and (td.task, td.dataset) == (task, "ChaLearn_2016")
    assert (td.val_split, td.test_split) == ("TRAIN hold-out 10%", "VALID")
    assert td.classes == mapping
    assert td.skipped_at_load == 2
    train = {p: float(mapping[c]) for p, c in written.splits["TRAIN"]}
    assert {**paths_labels(td.train), **paths_labels(td.val)} == train      # TRAIN = train + hold-out
    assert not set(td.train.paths) & set(td.val.paths) and len(td.val) >= 1 and len(td.train) >= 1
    assert paths_labels(td.test) == {p: float(mapping[c]) for p, c in written.splits["VALID"]}
    assert not set(written.ignored + written.skipped) & set(td.train.paths + td.val.paths)
    assert {p.suffix for p in td.train.paths + td.val.paths} == {".jpg", ".JPEG", ".png"}
    for images in (td.train, td.val):
        assert images.paths == sorted(images.paths, key=lambda p: (mapping[p.parent.name], p.name))
        assert images.sigma is None
    assert_rgb(td.train, 2)
    assert_rgb(td.val)
    assert_rgb(td.test)
    assert td.source == str(tmp_path / folder)


def test_chalearn_age_folders_sort_numerically(tmp_path):
    write_chalearn_imagefolder(tmp_path / "ages", classes=("10", "2", "30", "7.5"), n_per_class=2,
                               n_valid_per_class=1, zero_byte=0, extras=False)
    td = load_chalearn("age", config(tmp_path, chalearn_age="ages"))
    assert sorted(td.train.labels.tolist() + td.val.labels.tolist()) == [2, 2, 7.5, 7.5, 10, 10, 30, 30]
    assert td.train.labels.tolist() == sorted(td.train.labels.tolist())
    assert td.test.labels.tolist() == [2, 7.5, 10, 30]
    assert [p.parent.name for p in td.test.paths] == ["2", "7.5", "10", "30"]
    assert td.classes == {} and td.test_split == "VALID"


@pytest.mark.parametrize("bad", ["young", "nan", "-3"])
def test_chalearn_age_non_numeric_folder(tmp_path, bad):
    write_chalearn_imagefolder(tmp_path / "ages", classes=("10", bad), zero_byte=0, extras=False)
    raises_one_line(lambda: load_chalearn("age", config(tmp_path, chalearn_age="ages")),
                    tmp_path / "ages" / "TRAIN" / bad, "not a number")


def test_chalearn_valid_class_missing_from_train(tmp_path):
    root = tmp_path / "g"
    write_chalearn_imagefolder(root, zero_byte=0, extras=False)
    write_image(root / "VALID" / "unknown" / "x.jpg")
    raises_one_line(lambda: load_chalearn("gender", config(tmp_path, chalearn_gender="g")),
                    root / "VALID" / "unknown", "female, male")


def test_chalearn_wrong_number_of_classes(tmp_path):
    write_chalearn_imagefolder(tmp_path / "g", classes=("a", "b", "c"), zero_byte=0, extras=False)
    raises_one_line(lambda: load_chalearn("smile", config(tmp_path, chalearn_smile="g")),
                    tmp_path / "g" / "TRAIN", "3 class folders", "expected 2")


def test_chalearn_empty_train(tmp_path):
    root = tmp_path / "g"
    written = write_chalearn_imagefolder(root, n_per_class=1, zero_byte=1, extras=False)
    for path, _ in written.splits["TRAIN"]:
        path.unlink()
    raises_one_line(lambda: load_chalearn("gender", config(tmp_path, chalearn_gender="g")),
                    root / "TRAIN", "no .jpg/.jpeg/.png images")


# --- ChaLearn official (age) --------------------------------------------------------------------------

def test_chalearn_official_continuous_ages(tmp_path):
    written = write_chalearn_official(tmp_path / "ChaLearn_LAP_2016_age", n_train=5, n_valid=3, missing=1)
    (tmp_path / "ChaLearn_LAP_2016_age" / "train" / "000001.jpg").write_bytes(b"")  # zero-byte: skipped
    td = load_chalearn("age", config(tmp_path, chalearn_layout="official"))
    assert (td.val_split, td.test_split, td.task, td.dataset) == ("valid", "test", "age", "ChaLearn_2016")
    expected_train = {p: m for p, m in written.splits["train"] if p.name != "000001.jpg"}
    assert paths_labels(td.train) == expected_train
    assert paths_labels(td.val) == dict(written.splits["valid"])
    assert paths_labels(td.test) == dict(written.splits["test"])
    assert td.train.labels.tolist() == sorted(td.train.labels.tolist())  # rows by image name
    assert any(m % 1 for m in td.train.labels)  # continuous, not rounded
    for images in (td.train, td.val, td.test):
        assert images.sigma.tolist() == [written.sigma[p] for p in images.paths]
    assert td.skipped_at_load == len(written.skipped) + 1
    assert_rgb(td.train)
    assert_rgb(td.test)


@pytest.mark.parametrize("task", ["gender", "smile"])
def test_chalearn_official_has_no_gender_or_smile(tmp_path, task):
    write_chalearn_official(tmp_path / "ChaLearn_LAP_2016_age")
    raises_one_line(lambda: load_chalearn(task, config(tmp_path, chalearn_layout="official")),
                    "imagefolder", f"chalearn_{task}")


def test_chalearn_official_bad_mean(tmp_path):
    root = tmp_path / "off"
    write_chalearn_official(root)
    gt = root / "valid_gt.csv"
    gt.write_text(gt.read_text().replace("\n001001.jpg,", "\n001001.jpg,old", 1))
    raises_one_line(lambda: load_chalearn("age", config(tmp_path, chalearn_layout="official",
                                                        chalearn_official="off")),
                    gt, "line 3", "not a number")


@pytest.mark.parametrize("stdv", ["wide", "-1", "nan"])
def test_chalearn_official_bad_stdv(tmp_path, stdv):
    root = tmp_path / "off"
    write_chalearn_official(root)
    gt = root / "test_gt.csv"
    lines = gt.read_text().split("\n")
    lines[2] = ",".join(lines[2].split(",")[:2] + [stdv])
    gt.write_text("\n".join(lines))
    raises_one_line(lambda: load_chalearn("age", config(tmp_path, chalearn_layout="official",
                                                        chalearn_official="off")),
                    gt, "line 3", f"stdv {stdv!r} is not a number >= 0")


# --- FER2013 ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("eval_split, val_split", [("PublicTest", "PrivateTest"), ("PrivateTest", "PublicTest")])
def test_fer_csv(tmp_path, eval_split, val_split):
    data = write_fer2013_csv(tmp_path / "fer2013" / "fer2013.csv", n_train=7, n_public=3, n_private=4)
    td = load_fer2013(config(tmp_path, fer2013_eval_split=eval_split))
    assert (td.task, td.dataset, td.val_split, td.test_split) == ("emotion", "FER_2013", val_split, eval_split)
    assert td.classes == {name: i for i, name in enumerate(EMOTIONS)}
    for images, split in ((td.train, "Training"), (td.val, val_split), (td.test, eval_split)):
        pixels, labels = data[split]
        assert images.pixels.dtype == np.uint8 and images.pixels.shape == (len(labels), 48, 48)
        np.testing.assert_array_equal(images.pixels, pixels)
        np.testing.assert_array_equal(images.labels, labels)
        assert images.sigma is None
    image = td.test.image(1)
    assert image.mode == "RGB" and image.size == (48, 48)
    assert np.array_equal(np.asarray(image)[..., 0], data[eval_split][0][1])


@pytest.mark.parametrize("flat, dtype", [(True, "uint8"), (False, "uint8"),
                                         (True, "float32"), (False, "float64")])
def test_fer_h5_matches_csv(tmp_path, flat, dtype):
    data = fer2013_arrays(n_train=5, n_public=2, n_private=3, seed=1)
    write_fer2013_csv(tmp_path / "fer.csv", data)
    write_fer2013_h5(tmp_path / "fer.h5", data, flat=flat, dtype=dtype)
    from_csv = load_fer2013(config(tmp_path, fer2013="fer.csv"))
    from_h5 = load_fer2013(config(tmp_path, fer2013="fer.h5"))
    assert from_h5.test_split == from_csv.test_split == "PrivateTest"
    assert from_h5.val_split == from_csv.val_split == "PublicTest"
    for a, b in ((from_csv.train, from_h5.train), (from_csv.val, from_h5.val), (from_csv.test, from_h5.test)):
        assert b.pixels.dtype == np.uint8 and b.pixels.shape == a.pixels.shape
        np.testing.assert_array_equal(a.pixels, b.pixels)
        np.testing.assert_array_equal(a.labels, b.labels)
    assert_rgb(from_h5.train)


def test_fer_csv_windows_line_endings(tmp_path):
    path = tmp_path / "fer.csv"
    data = write_fer2013_csv(path, n_train=2, n_public=2, n_private=1)
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    td = load_fer2013(config(tmp_path, fer2013="fer.csv", fer2013_eval_split="PublicTest"))
    np.testing.assert_array_equal(td.test.pixels, data["PublicTest"][0])
    np.testing.assert_array_equal(td.val.pixels, data["PrivateTest"][0])


def _corrupt_line(path: Path, line: int, edit: Callable[[list[str]], list[str]]) -> None:
    """Replace the comma-separated fields of one 1-based line."""
    lines = path.read_text().split("\n")
    lines[line - 1] = ",".join(edit(lines[line - 1].split(",")))
    path.write_text("\n".join(lines))


@pytest.mark.parametrize("edit, problem", [
    (lambda f: [f[0], f[1].rsplit(" ", 1)[0], f[2]], "2303 pixel values, expected 2304"),
    (lambda f: [f[0], f[1] + " 7", f[2]], "2305 pixel values"),
    (lambda f: [f[0], f[1].replace(" ", " abc ", 1), f[2]], "pixel 2 is 'abc'"),
    (lambda f: [f[0], "12.5 " + f[1].split(" ", 1)[1], f[2]], "pixel 1 is '12.5'"),
    (lambda f: [f[0], "256 " + f[1].split(" ", 1)[1], f[2]], "0..255"),
    (lambda f: ["7", f[1], f[2]], "emotion 7 is out of 0..6"),
    (lambda f: ["-1", f[1], f[2]], "out of 0..6"),
    (lambda f: ["happy", f[1], f[2]], "emotion 'happy' is not an integer"),
    (lambda f: [f[0], f[1], "Validation"], "Usage 'Validation'"),
    (lambda f: [f[0], f[1]], "expected 3 columns"),
])
def test_fer_csv_bad_row(tmp_path, edit, problem):
    path = tmp_path / "fer.csv"
    write_fer2013_csv(path, n_train=3, n_public=1, n_private=1)
    _corrupt_line(path, 4, edit)
    raises_one_line(lambda: load_fer2013(config(tmp_path, fer2013="fer.csv")), path, "line 4", problem)


def test_fer_csv_bad_header_and_empty_split(tmp_path):
    path = tmp_path / "fer.csv"
    write_fer2013_csv(path, n_train=2, n_public=1, n_private=1)
    text = path.read_text()
    path.write_text(text.replace("emotion,pixels,Usage", "label,pixels,Usage", 1))
    raises_one_line(lambda: load_fer2013(config(tmp_path, fer2013="fer.csv")), path, "emotion,pixels,Usage")
    write_fer2013_csv(path, n_train=2, n_public=1, n_private=0)
    raises_one_line(lambda: load_fer2013(config(tmp_path, fer2013="fer.csv")), path, "no PrivateTest")
    write_fer2013_csv(path, n_train=2, n_public=0, n_private=1)   # the select split is needed too
    raises_one_line(lambda: load_fer2013(config(tmp_path, fer2013="fer.csv")), path, "no PublicTest")
    write_fer2013_csv(path, n_train=0, n_public=1, n_private=1)
    raises_one_line(lambda: load_fer2013(config(tmp_path, fer2013="fer.csv")), path, "no Training")


def test_fer_h5_missing_keys(tmp_path):
    import h5py

    path = tmp_path / "fer.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("Training_pixel", data=np.zeros((2, 2304), np.uint8))
        f.create_dataset("Training_label", data=np.zeros(2, np.int64))
        f.create_dataset("Test_pixel", data=np.zeros((1, 2304), np.uint8))
    raises_one_line(lambda: load_fer2013(config(tmp_path, fer2013="fer.h5")), path,
                    "missing datasets PublicTest_pixel, PublicTest_label, PrivateTest_pixel, PrivateTest_label",
                    "expected Training_pixel, Training_label, PublicTest_pixel, PublicTest_label, "
                    "PrivateTest_pixel, PrivateTest_label",
                    "found Test_pixel, Training_label, Training_pixel")


def test_fer_h5_bad_content(tmp_path):
    data = fer2013_arrays(n_train=2, n_public=1, n_private=1)
    scaled = {s: (p / 255.0, y) for s, (p, y) in data.items()}
    write_fer2013_h5(tmp_path / "a.h5", scaled, dtype="float32")
    raises_one_line(lambda: load_fer2013(config(tmp_path, fer2013="a.h5")), tmp_path / "a.h5", "0..1")
    bad_labels = {s: (p, y + 7) for s, (p, y) in data.items()}
    write_fer2013_h5(tmp_path / "b.hdf5", bad_labels)
    raises_one_line(lambda: load_fer2013(config(tmp_path, fer2013="b.hdf5")), tmp_path / "b.hdf5",
                    "Training_label", "outside 0..6")
    (tmp_path / "c.h5").write_text("not hdf5")
    raises_one_line(lambda: load_fer2013(config(tmp_path, fer2013="c.h5")), tmp_path / "c.h5", "HDF5")


def test_fer_unknown_suffix(tmp_path):
    (tmp_path / "fer.npz").write_bytes(b"x")
    raises_one_line(lambda: load_fer2013(config(tmp_path, fer2013="fer.npz")), tmp_path / "fer.npz", ".npz")


# --- IMDB-WIKI aligned -------------------------------------------------------------------------------

@pytest.mark.parametrize("task", ["gender", "age"])
def test_imdb_wiki_aligned(tmp_path, task):
    written = write_imdb_wiki_aligned(tmp_path / "imdb_wiki", n_train=6, n_val=3, zero_byte=1)
    td = load_imdb_wiki(task, config(tmp_path))
    assert (td.task, td.dataset, td.val_split, td.test_split) == (task, "IMDB-WIKI", "train hold-out 10%", "val")
    assert td.skipped_at_load == len(written.skipped) == 5
    pick = 1 if task == "gender" else 0
    expected = {s: {p: float(lab[pick]) for p, lab in written.splits[s]} for s in written.splits}
    assert {**paths_labels(td.train), **paths_labels(td.val)} == expected["train"]
    assert not set(td.train.paths) & set(td.val.paths) and len(td.val) >= 1
    assert paths_labels(td.test) == expected["val"]
    for images in (td.train, td.val, td.test):
        assert images.paths == sorted(images.paths)
    assert td.classes == ({"female": 0, "male": 1} if task == "gender" else {})
    assert_rgb(td.train)
    assert_rgb(td.val)
    assert_rgb(td.test)


def test_imdb_wiki_aligned_empty_train(tmp_path):
    written = write_imdb_wiki_aligned(tmp_path / "imdb_wiki", n_train=2)
    for path, _ in written.splits["train"]:
        path.unlink()
    raises_one_line(lambda: load_imdb_wiki("age", config(tmp_path)), tmp_path / "imdb_wiki" / "train",
                    "no usable images")


# --- IMDB-WIKI mat -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["imdb", "wiki"])
def test_imdb_wiki_mat_cleaning_and_split(tmp_path, name):
    rows = write_imdb_wiki_mat(tmp_path / f"{name}_crop", name=name)
    data = config(tmp_path, imdb_wiki_layout="mat", imdb_wiki_mat=f"{name}_crop/{name}.mat",
                  imdb_wiki_val_fraction=0.3)
    base = tmp_path / f"{name}_crop"
    kept = {base / r.rel: r for r in rows if r.drop is None}
    dropped = [r for r in rows if r.drop is not None]
    for task in ("gender", "age"):
        td = load_imdb_wiki(task, data)
        assert (td.task, td.dataset) == (task, "IMDB-WIKI")
        assert (td.val_split, td.test_split) == ("train hold-out 10%", "test (hashed 30%)")
        loaded = {**paths_labels(td.train), **paths_labels(td.val), **paths_labels(td.test)}
        assert set(loaded) == set(kept)
        assert len(td.train) + len(td.val) + len(td.test) == len(kept)       # disjoint and covering
        assert 0 < len(td.val) < len(td.train) and 0 < len(td.test) < len(td.train)
        assert td.skipped_at_load == len(dropped)
        assert f"kept {len(kept)} of {len(rows)}" in td.source
        for path, label in loaded.items():
            assert label == (kept[path].gender if task == "gender" else kept[path].age)
        assert {p.relative_to(base).as_posix() for p in td.test.paths} == \
               {r.rel for r in kept.values() if in_val_split(r.rel, 0.3)}
        assert_rgb(td.train)
        assert_rgb(td.test)
    fields = read_imdb_wiki_mat(base / f"{name}.mat")
    _, counts = clean_mask(fields, mat_ages(fields["dob"], fields["photo_taken"]))
    assert counts == {reason: sum(r.drop == reason for r in rows)
                      for reason in ("no_face", "second_face", "bad_age", "no_gender")}
    assert counts == {"no_face": 3, "second_face": 1, "bad_age": 2, "no_gender": 1}


def test_mat_ages_match_the_usual_computation():
    rng = np.random.default_rng(0)
    days = [dt.date(1900, 1, 1) + dt.timedelta(days=int(d)) for d in rng.integers(0, 40000, 300)]
    days += [dt.date(1969, 12, 31), dt.date(1970, 1, 1), dt.date(2000, 2, 29), dt.date(1, 1, 1)]
    dob = np.array([matlab_datenum(d, f) for d, f in zip(days, rng.random(len(days)))])
    taken = rng.integers(1950, 2016, len(days)).astype(np.float64)
    expected = [usual_age(d, int(t)) for d, t in zip(dob, taken)]
    assert mat_ages(dob, taken).tolist() == expected
    assert np.isnan(mat_ages(np.array([0.0, np.nan, 366.0]), np.array([2000.0] * 3))).all()


def test_val_split_is_stable_and_near_fraction():
    names = [f"{i % 100:02d}/nm{i:07d}_rm{i:09d}_1980-1-1_2010.jpg" for i in range(20000)]
    share = np.mean([in_val_split(n, 0.05) for n in names])
    assert 0.04 < share < 0.06
    assert in_val_split("01/a.jpg", 0.5) == in_val_split("01/a.jpg", 0.5)
    assert not in_val_split("01/a.jpg", 0.0) and in_val_split("01/a.jpg", 1.0)


def test_imdb_wiki_mat_without_struct(tmp_path):
    from scipy.io import savemat

    savemat(str(tmp_path / "imdb.mat"), {"faces": np.zeros((1, 3))})
    raises_one_line(lambda: load_imdb_wiki("age", config(tmp_path, imdb_wiki_layout="mat",
                                                         imdb_wiki_mat="imdb.mat")),
                    tmp_path / "imdb.mat", "imdb or wiki", "found faces")


def test_imdb_wiki_mat_fields_missing(tmp_path):
    from scipy.io import savemat

    savemat(str(tmp_path / "wiki.mat"), {"wiki": {"dob": np.zeros((1, 2)), "gender": np.ones((1, 2))}})
    raises_one_line(lambda: load_imdb_wiki("gender", config(tmp_path, imdb_wiki_layout="mat",
                                                            imdb_wiki_mat="wiki.mat")),
                    tmp_path / "wiki.mat", "photo_taken, full_path")


# --- missing data: one line naming the path and the expected layout ----------------------------------

MISSING_CASES = {
    "chalearn gender": (lambda d: load_chalearn("gender", d), {}, "CVPR_GENDER_5_points",
                        "TRAIN/<class>/*.jpg", "data.chalearn_gender"),
    "chalearn smile": (lambda d: load_chalearn("smile", d), {"chalearn_smile": "s"}, "s",
                       "VALID/<class>/*.jpg", "data.chalearn_smile"),
    "chalearn age": (lambda d: load_chalearn("age", d), {}, "CVPR_AGE_5_points", "TRAIN/", "data.chalearn_age"),
    "chalearn official": (lambda d: load_chalearn("age", d), {"chalearn_layout": "official"},
                          "ChaLearn_LAP_2016_age", "train_gt.csv", "data.chalearn_official"),
    "fer2013": (load_fer2013, {}, "fer2013/fer2013.csv", "emotion,pixels,Usage", "data.fer2013"),
    "imdb aligned": (lambda d: load_imdb_wiki("gender", d), {}, "imdb_wiki", "<age>_<gender>_<name>.jpg",
                     "data.imdb_wiki"),
    "imdb mat": (lambda d: load_imdb_wiki("age", d), {"imdb_wiki_layout": "mat"}, "imdb_crop/imdb.mat",
                 "imdb.mat or wiki.mat", "data.imdb_wiki_mat"),
}


@pytest.mark.parametrize("case", MISSING_CASES)
def test_missing_data_is_one_line(tmp_path, case):
    load, overrides, rel, layout, key = MISSING_CASES[case]
    raises_one_line(lambda: load(config(tmp_path, **overrides)), tmp_path / rel, layout, key)


def test_missing_part_names_that_part(tmp_path):
    root = tmp_path / "CVPR_GENDER_5_points"
    write_chalearn_imagefolder(root, zero_byte=0, extras=False)
    shutil.rmtree(root / "VALID")
    raises_one_line(lambda: load_chalearn("gender", config(tmp_path)), root / "VALID", "VALID/<class>")
    official = tmp_path / "ChaLearn_LAP_2016_age"
    write_chalearn_official(official)
    (official / "valid_gt.csv").unlink()
    raises_one_line(lambda: load_chalearn("age", config(tmp_path, chalearn_layout="official")),
                    official / "valid_gt.csv", "valid_gt.csv")
    write_imdb_wiki_aligned(tmp_path / "imdb_wiki")
    shutil.rmtree(tmp_path / "imdb_wiki" / "val")
    raises_one_line(lambda: load_imdb_wiki("age", config(tmp_path)), tmp_path / "imdb_wiki" / "val", "val/")


@pytest.mark.parametrize("load", [lambda d: load_chalearn("emotion", d), lambda d: load_imdb_wiki("smile", d)])
def test_unknown_task(tmp_path, load):
    raises_one_line(lambda: load(config(tmp_path)), "valid:")

"""The bad input corpus, part 2: dataset files (through mtl-train) and run folders (through mtl-collect).

A dataset the trainer cannot use ends the run with exit 2 and one ``mtl-train: error:`` line naming the
file and the problem (after the run's own timestamped progress lines), status.json ``failed`` with the
same reason, and no half-written file. Unreadable images are skipped and counted, not fatal.
mtl-collect lists a damaged run folder with the reason under the table, never crashes, never writes.
"""
from __future__ import annotations

import json
import logging
import re
import tempfile
from pathlib import Path
from typing import Callable

import h5py
import numpy as np
import pytest
from hypothesis import given, strategies as st

from badinput import FUZZ, Result, assert_no_traceback, assert_nothing_half_written, call, snapshot
from conftest import run_cli, sets, train_cmd
from formats import (write_chalearn_imagefolder, write_chalearn_official,
                     write_fer2013_h5, write_image, write_imdb_wiki_mat)
from mtl_cluster.cli.train import train_main
from mtl_cluster.cli.collect import collect_main
from mtl_cluster.config import DataConfig
from runfolders import config as run_config, write_run

SMALL = ("image_size=64", "batch_size=4", "epoch=1", "steps_per_epoch=2")
LOG_LINE = re.compile(r"^\d\d:\d\d:\d\d ")   # the trainer's progress log on stderr (ui.setup_logging)


@pytest.fixture
def fresh_log_handler():
    """In-process runs: let ui.setup_logging bind its stderr handler to each call's captured stderr."""
    logger = logging.getLogger("mtl_cluster")

    def drop() -> None:
        for h in [h for h in logger.handlers if getattr(h, "_mtl_console", False)]:
            logger.removeHandler(h)
    drop()
    yield
    drop()


def assert_run_refused(res: Result, run: Path, *needles: str) -> str:
    """Exit 2, the error as the one ``mtl-train: error:`` line (last), only log lines before it, the reason
    in status.json, nothing half-written."""
    assert "Traceback" not in res.out + res.err, res.err
    assert res.code == 2, res.err
    lines = [line for line in res.err.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("mtl-train: error: "), res.err
    assert all(LOG_LINE.match(line) for line in lines[:-1]), res.err
    for needle in needles:
        assert needle in lines[-1], f"{needle!r} not in {lines[-1]!r}"
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "failed" and status["reason"] == lines[-1].removeprefix("mtl-train: error: ")
    assert_nothing_half_written(run)
    assert not (run / "summary.json").exists() and not list((run / "checkpoints").glob("*.pt"))
    return lines[-1]


def _fer_csv(rows: list[str], header: str = "emotion,pixels,Usage") -> Callable[[Path], Path]:
    def write(data: Path) -> Path:
        path = data / "fer2013" / "fer2013.csv"
        path.parent.mkdir(parents=True)
        path.write_text("\n".join(([header] if header else []) + rows) + "\n")
        return path
    return write


PIX = " ".join(["128"] * 2304)


def _fer_bytes(content: bytes, name: str = "fer2013.csv") -> Callable[[Path], Path]:
    def write(data: Path) -> Path:
        path = data / "fer2013" / name
        path.parent.mkdir(parents=True)
        path.write_bytes(content)
        return path
    return write


def _fer_h5(change: Callable[[h5py.File], None]) -> Callable[[Path], Path]:
    def write(data: Path) -> Path:
        path = data / "fer2013" / "fer2013.csv"   # the key's default: the tests point data.fer2013 at the .h5
        h5 = path.with_name("data.h5")
        write_fer2013_h5(h5)
        with h5py.File(h5, "a") as f:
            change(f)
        return h5
    return write


def _replace(key: str, value) -> Callable[[h5py.File], None]:
    def change(f: h5py.File) -> None:
        del f[key]
        if isinstance(value, str) and value == "group":
            f.create_group(key)
        else:
            f.create_dataset(key, data=value)
    return change


def _empty_split(split: str) -> Callable[[h5py.File], None]:
    def change(f: h5py.File) -> None:
        _replace(f"{split}_pixel", np.zeros((0, 2304), np.uint8))(f)
        _replace(f"{split}_label", np.zeros(0, np.int64))(f)
    return change


def _drop(*keys: str) -> Callable[[h5py.File], None]:
    def change(f: h5py.File) -> None:
        for k in keys:
            del f[k]
    return change


FER_CASES = [
    ("pixels-2303", _fer_csv([f"0,{PIX[4:]},Training"]), "2303 pixel values, expected 2304"),
    ("pixels-text", _fer_csv([f"0,12 ab {PIX[7:]},Training"]), "pixel 2 is 'ab'"),
    ("pixels-300", _fer_csv([f"0,300 {PIX[4:]},Training"]), "pixel values must be 0..255"),
    ("pixels-negative", _fer_csv([f"0,-1 {PIX[4:]},Training"]), "pixel"),
    ("no-header", _fer_csv([f"0,{PIX},Training"], header=""), "expected the header"),
    ("header-only", _fer_csv([]), "has no Training images"),
    ("empty-file", _fer_bytes(b""), "found nothing"),
    ("binary", _fer_bytes(b"\xff\xfe\x00\x89PNG\r\n" * 50), "not a readable CSV"),
    ("emotion-9", _fer_csv([f"9,{PIX},Training"]), "emotion 9 is out of 0..6"),
    ("emotion-negative", _fer_csv([f"-1,{PIX},Training"]), "emotion -1 is out of 0..6"),
    ("emotion-text", _fer_csv([f"happy,{PIX},Training"]), "not an integer"),
    ("usage", _fer_csv([f"0,{PIX},Train"]), "Usage 'Train'"),
    ("columns", _fer_csv(["0,1 2 3"]), "expected 3 columns"),
    ("suffix", _fer_bytes(b"x", name="fer2013.txt"), "has suffix '.txt'"),
    ("h5-keys", _fer_h5(_drop("Training_pixel", "PrivateTest_label")), "missing datasets Training_pixel"),
    ("h5-not-hdf5", _fer_bytes(b"just text, not HDF5\n", name="data.h5"), "not a readable HDF5 file"),
    ("h5-empty", _fer_bytes(b"", name="data.h5"), "not a readable HDF5 file"),
    ("h5-label-9", _fer_h5(_replace("Training_label", np.array([9, 0, 1, 2, 3, 4]))), "outside 0..6"),
    ("h5-label-float", _fer_h5(_replace("Training_label", np.full(6, 0.5))), "must hold integers"),
    ("h5-shape", _fer_h5(_replace("Training_pixel", np.zeros((6, 100), np.uint8))), "has shape (6, 100)"),
    ("h5-scalar", _fer_h5(_replace("Training_pixel", 3)), "has shape ()"),
    ("h5-scaled", _fer_h5(_replace("Training_pixel", np.full((6, 2304), 0.5))), "scaled to 0..1"),
    ("h5-group", _fer_h5(_replace("Training_pixel", "group")), "cannot read the datasets"),
    ("h5-text", _fer_h5(_replace("Training_pixel", np.array([b"x"] * 6))), "Training_pixel"),
    ("no-test-rows", _fer_csv([f"0,{PIX},Training", f"1,{PIX},PublicTest"]), "has no PrivateTest images"),
    ("no-val-rows", _fer_csv([f"0,{PIX},Training", f"1,{PIX},PrivateTest"]), "has no PublicTest images"),
    ("h5-empty-test", _fer_h5(_empty_split("PrivateTest")), "has no PrivateTest images"),
]


@pytest.mark.parametrize("write, needle", [c[1:] for c in FER_CASES], ids=[c[0] for c in FER_CASES])
def test_fer2013_files(write, needle: str, tmp_path: Path, corpus, fresh_log_handler) -> None:
    data = tmp_path / "data"
    path = write(data)
    run = tmp_path / "run"
    with corpus.case("dataset files"):
        res = call(train_main, ["--run-dir", str(run), *sets(*SMALL, "dataset=CVPR_16_ChaLearn", f"data.root={data}",
                                                             "loss_weights=[0,0,1,0]", f"data.fer2013={path}")])
        assert_run_refused(res, run, needle, str(path) if "suffix" not in needle else "FER2013")


def _savemat(content: dict) -> Callable[[Path], None]:
    def write(root: Path) -> None:
        from scipy.io import savemat
        root.mkdir(parents=True)
        savemat(str(root / "imdb.mat"), content)
    return write


def _bytes_at(name: str, content: bytes) -> Callable[[Path], None]:
    def write(root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(content)
    return write


IMDB_CASES = [
    ("not-mat", _bytes_at("imdb.mat", b"this is not a mat file\n" * 20), "not a readable .mat file"),
    ("empty", _bytes_at("imdb.mat", b""), "not a readable .mat file"),
    ("header-only", _bytes_at("imdb.mat", b"MATLAB 5.0 MAT-file" + b"\x00" * 200), "not a readable .mat file"),
    ("no-struct", _savemat({"celebs": np.zeros(3)}), "no struct named imdb or wiki (found celebs)"),
    ("fields", _savemat({"imdb": {"dob": np.zeros((1, 3)), "gender": np.zeros((1, 3))}}), "lacks fields"),
    ("non-numeric", _savemat({"imdb": {f: np.array([["a", "b"]], dtype=object) for f in
                                       ("dob", "photo_taken", "full_path", "gender", "face_score",
                                        "second_face_score")}}), "must be numeric arrays"),
]


@pytest.mark.parametrize("write, needle", [c[1:] for c in IMDB_CASES], ids=[c[0] for c in IMDB_CASES])
def test_imdb_wiki_mat_files(write, needle: str, tmp_path: Path, corpus, fresh_log_handler) -> None:
    data = tmp_path / "data"
    write(data / "imdb_crop")
    run = tmp_path / "run"
    with corpus.case("dataset files"):
        res = call(train_main, ["--run-dir", str(run), *sets(*SMALL, "dataset=IMDB-WIKI", "loss_weights=[1,0,0,1]",
                                                             "data.imdb_wiki_layout=mat", f"data.root={data}")])
        assert_run_refused(res, run, needle, "imdb.mat")


def _chalearn_age(*folders: str) -> Callable[[Path], None]:
    def write(data: Path) -> None:
        write_chalearn_imagefolder(data / "CVPR_AGE_5_points", classes=folders)
    return write


def _official(split: str, rows: str) -> Callable[[Path], None]:
    def write(data: Path) -> None:
        write_chalearn_official(data / "ChaLearn_LAP_2016_age")
        (data / "ChaLearn_LAP_2016_age" / f"{split}_gt.csv").write_bytes(rows.encode("latin-1"))
    return write


def _official_without_test(train_rows: str) -> Callable[[Path], None]:
    """The release before its test labels: the validation split is then held out of train."""
    def write(data: Path) -> None:
        write_chalearn_official(data / "ChaLearn_LAP_2016_age", test=False)
        (data / "ChaLearn_LAP_2016_age" / "train_gt.csv").write_text(train_rows)
    return write


def _no_images(data: Path) -> None:
    """Class folders holding only zero-byte .jpg files and files that are not images."""
    for split in ("TRAIN", "VALID"):
        for cls in ("female", "male"):
            folder = data / "CVPR_GENDER_5_points" / split / cls
            folder.mkdir(parents=True)
            (folder / "a.jpg").write_bytes(b"")
            (folder / "notes.txt").write_text("x")


CHALEARN_CASES = [
    ("age-negative", ["loss_weights=[0,0,0,1]"], _chalearn_age("8", "-3"), "-3 is not a number"),
    ("age-word", ["loss_weights=[0,0,0,1]"], _chalearn_age("8", "old"), "old is not a number"),
    ("gender-3", ["loss_weights=[1,0,0,0]"],
     lambda d: write_chalearn_imagefolder(d / "CVPR_GENDER_5_points", classes=("f", "m", "x")), "3 class folders"),
    ("gender-no-images", ["loss_weights=[1,0,0,0]"], _no_images, "has no .jpg/.jpeg/.png images"),
    ("official-negative", ["loss_weights=[0,0,0,1]", "data.chalearn_layout=official"],
     _official("train", "image,mean,stdv\n001000.jpg,-5,1\n"), "mean '-5' is not a number >= 0"),
    ("official-nan", ["loss_weights=[0,0,0,1]", "data.chalearn_layout=official"],
     _official("valid", "image,mean,stdv\n001000.jpg,nan,1\n"), "mean 'nan' is not a number >= 0"),
    ("official-header", ["loss_weights=[0,0,0,1]", "data.chalearn_layout=official"],
     _official("train", "file,age\n"), "expected the header image,mean,stdv"),
    ("official-binary", ["loss_weights=[0,0,0,1]", "data.chalearn_layout=official"],
     _official("train", "\xff\xfe\x00garbage\n"), "not a readable CSV"),
    ("official-stdv-word", ["loss_weights=[0,0,0,1]", "data.chalearn_layout=official"],
     _official("valid", "image,mean,stdv\n001000.jpg,30,wide\n"), "line 2: stdv 'wide' is not a number >= 0"),
    ("official-stdv-negative", ["loss_weights=[0,0,0,1]", "data.chalearn_layout=official"],
     _official("train", "image,mean,stdv\n000000.jpg,30,2\n000001.jpg,31,-0.5\n"),
     "line 3: stdv '-0.5' is not a number >= 0"),
    ("official-empty-test", ["loss_weights=[0,0,0,1]", "data.chalearn_layout=official"],
     _official("test", "image,mean,stdv\n009999.jpg,30,2\n"), "test: none of the 1 rows"),
    ("official-one-train-image", ["loss_weights=[0,0,0,1]", "data.chalearn_layout=official"],
     _official_without_test("image,mean,stdv\n000000.jpg,30,2\n"), "too few to hold out a validation split"),
]


@pytest.mark.parametrize("extra, write, needle", [c[1:] for c in CHALEARN_CASES], ids=[c[0] for c in CHALEARN_CASES])
def test_chalearn_files(extra: list[str], write, needle: str, tmp_path: Path, corpus, fresh_log_handler) -> None:
    data = tmp_path / "data"
    write(data)
    run = tmp_path / "run"
    with corpus.case("dataset files"):
        res = call(train_main, ["--run-dir", str(run), *sets(*SMALL, "dataset=CVPR_16_ChaLearn", f"data.root={data}",
                                                             *extra)])
        assert_run_refused(res, run, needle)


def test_labels_outside_the_label_space_are_dropped_and_counted(tmp_path: Path, corpus) -> None:
    """IMDB-WIKI labels live in file names or .mat rows: a gender 2 or an age of 150 is a row to drop (and
    count), as the release's cleaning rules do, not a reason to stop."""
    from mtl_cluster.train.data.imdb_wiki import load_imdb_wiki
    from scipy.io import loadmat, savemat

    root = tmp_path / "imdb_crop"
    write_imdb_wiki_mat(root)
    mat = loadmat(str(root / "imdb.mat"))
    fields = {name: mat["imdb"][0, 0][name] for name in mat["imdb"].dtype.names}
    fields["gender"] = fields["gender"].copy()
    fields["gender"][0, 0] = 2.0      # a clean row made unusable
    savemat(str(root / "imdb.mat"), {"imdb": fields})
    with corpus.case("dataset labels"):
        gender = load_imdb_wiki("gender", DataConfig(root=str(tmp_path), imdb_wiki_layout="mat"))
        labels = np.concatenate([gender.train.labels, gender.val.labels, gender.test.labels])
        assert set(np.unique(labels)) <= {0.0, 1.0}
        assert "2 with unknown gender" in gender.source          # the fixture's NaN row and ours
    aligned = tmp_path / "imdb_wiki"
    for name in ("train/30_1_ok_a.jpg", "train/31_0_ok_b.jpg", "val/30_1_ok_val.jpg"):
        write_image(aligned / name)
    for bad in ("30_2_x.jpg", "150_1_x.jpg", "-4_1_x.jpg", "x_1_x.jpg"):
        write_image(aligned / "train" / bad)
    with corpus.case("dataset labels"):
        d = load_imdb_wiki("age", DataConfig(root=str(tmp_path)))
        assert (len(d.train), len(d.val), len(d.test)) == (1, 1, 1) and d.skipped_at_load == 4


def test_unreadable_images_are_skipped_and_counted(tmp_path: Path, corpus) -> None:
    """The intended behaviour for image folders: zero-byte files are counted at load, files that do not
    decode (text named .jpg, a truncated JPEG) are skipped at their first use and counted in summary.json."""
    data = tmp_path / "data"
    write_chalearn_imagefolder(data / "CVPR_GENDER_5_points", n_per_class=4, zero_byte=2)
    male = data / "CVPR_GENDER_5_points" / "TRAIN" / "male"
    (male / "text.jpg").write_text("not an image at all\n")
    (male / "truncated.jpg").write_bytes((male / "train_male_000.jpg").read_bytes()[:40])
    (male / "random.png").write_bytes(bytes(range(256)) * 4)
    run = tmp_path / "run"
    with corpus.case("dataset images"):   # the end-to-end check: a real subprocess, the CLI a job runs
        res = run_cli(train_cmd(run, *sets("image_size=64", "batch_size=4", "epoch=1", "steps_per_epoch=4",
                                           "dataset=CVPR_16_ChaLearn", "loss_weights=[1,0,0,0]",
                                           f"data.root={data}")))
        assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
        summary = json.loads((run / "summary.json").read_text())
        assert summary["skipped_at_load"] == {"gender": 2}
        assert summary["unreadable_images"] == {"gender": 3}
        log = (run / "log.txt").read_text()
        assert all(name in log for name in ("text.jpg", "truncated.jpg", "random.png"))
        assert_nothing_half_written(run)


# -- run folders for the collector --------------------------------------------------------------------
GOOD_CFG = run_config()
BAD_CFG = run_config(name="AlexNet-Gender", loss_weights=[1.0, 0.0, 0.0, 0.0])


def _edit(name: str, content) -> Callable[[Path], None]:
    def change(run: Path) -> None:
        target = run / name
        if callable(content):
            content_ = content(target.read_bytes() if target.exists() else b"")
        else:
            content_ = content
        target.write_bytes(content_ if isinstance(content_, bytes) else content_.encode("utf-8"))
    return change


def _remove(*names: str) -> Callable[[Path], None]:
    def change(run: Path) -> None:
        for n in names:
            (run / n).unlink()
    return change


def _summary_selected(record) -> Callable[[Path], None]:
    """Replace the record the table reads: the gender test metrics at the epoch its validation chose."""
    def change(run: Path) -> None:
        s = json.loads((run / "summary.json").read_text())
        s["selection"]["tasks"]["gender"]["test"] = record
        (run / "summary.json").write_text(json.dumps(s))
    return change


COLLECT_CASES = [
    ("config-truncated", _edit("config.yaml", lambda b: b[: len(b) // 3] + b"\n  - [unclosed"), "config.yaml: invalid"),
    ("config-binary", _edit("config.yaml", b"\x89PNG\r\n\x1a\n\xff\xfe\x00\x00"), "config.yaml: cannot read"),
    ("config-list", _edit("config.yaml", "- a\n- b\n"), "config.yaml: expected a mapping"),
    ("config-empty", _edit("config.yaml", b""), "config.yaml: expected a mapping, got NoneType"),
    ("config-python-tag", _edit("config.yaml", "name: !!python/object/apply:os.system ['true']\n"),
     "config.yaml: invalid"),
    ("config-bomb", _edit("config.yaml", lambda b: b + "".join(
        f"x{i}: &x{i} [" + ", ".join([f"*x{i - 1}" if i else "1"] * 9) + "]\n" for i in range(9)).encode()),
     "aliases expand"),
    ("config-no-name", _edit("config.yaml", lambda b: b.replace(b"name: AlexNet-Gender\n", b"")), "no 'name'"),
    ("config-weights", _edit("config.yaml", lambda b: b.replace(b"- 1.0\n- 0.0\n- 0.0\n- 0.0", b"- a")),
     "not 4 numbers"),
    ("config-markup", _edit("config.yaml", lambda b: b.replace(b"name: AlexNet-Gender", b"name: '[/x] [bold]'")),
     None),
    ("summary-truncated", _edit("summary.json", lambda b: b[: len(b) // 2]), "summary.json: invalid"),
    ("summary-binary", _edit("summary.json", bytes(range(256))), "summary.json: cannot read"),
    ("summary-list", _edit("summary.json", "[1, 2]"), "summary.json: expected a mapping"),
    ("summary-missing", _remove("summary.json"), "summary.json is missing"),
    ("summary-no-metrics", _summary_selected({}), "gender_acc is None, not a number"),
    ("summary-no-best", _summary_selected(None), "no selection.tasks.gender.test record"),
    ("summary-string-metric", _summary_selected({"gender_acc": "97.5"}), "not a number"),
    ("summary-nan-metric", _summary_selected({"gender_acc": float("nan")}), "not a number"),
    ("summary-bool-metric", _summary_selected({"gender_acc": True}), "not a number"),
    ("status-garbage", _edit("status.json", b"\x00\x01{{{"), "status.json"),
    ("status-failed-markup", _edit("status.json", json.dumps({"state": "failed", "reason": "[/red] boom [x]"})),
     "boom"),
    ("status-state-list", _edit("status.json", json.dumps({"state": ["x"], "attempts": "many"})), "attempt"),
    ("only-status", _remove("config.yaml", "summary.json", "metrics.jsonl"), "config.yaml is missing"),
    ("only-metrics-garbage", _edit("metrics.jsonl", b"\xff" * 64), None),
]


def _study(tmp: Path) -> tuple[Path, Path]:
    results = tmp / "results"
    write_run(results, GOOD_CFG, {"gender_acc": 90.0})
    bad = write_run(results, BAD_CFG, {"gender_acc": 80.0}, folder="zz/bad_run")
    return results, bad


def _collect_everything(results: Path, corpus, category: str, needle: str | None, bad: Path) -> None:
    """mtl-collect in the terminal table and JSON formats: exit 0, the bad folder listed with the reason
    (or counted), nothing written under results/."""
    before = snapshot(results)
    with corpus.case(category):
        res = call(collect_main, [str(results), "--format", "json"])
        assert_no_traceback(res)
        assert res.code == 0 and res.err == "", res.err
        report = json.loads(res.out)
        shown = f"{results.as_posix()}/zz/bad_run"
        problems = [p for p in report["problems"] if p["path"] == shown]
        if needle is not None:
            assert problems and any(needle in p["reason"] for p in problems), report["problems"]
        assert snapshot(results) == before
    with corpus.case(category):
        res = call(collect_main, [str(results)])
        assert_no_traceback(res)
        assert res.code == 0 and "zz/bad_run" in res.out.replace("\n", "") or needle is None, res.out
        assert snapshot(results) == before


@pytest.mark.parametrize("damage, needle", [c[1:] for c in COLLECT_CASES], ids=[c[0] for c in COLLECT_CASES])
def test_damaged_run_folders_are_listed_with_the_reason(damage, needle, tmp_path: Path, corpus) -> None:
    results, bad = _study(tmp_path)
    damage(bad)
    _collect_everything(results, corpus, "run folders", needle, bad)


def test_roots_that_hold_no_run(tmp_path: Path, corpus) -> None:
    empty = tmp_path / "empty"
    (empty / "a" / "b").mkdir(parents=True)
    (empty / "notes.txt").write_text("no runs here\n")
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    for root, code, needle in ((empty, 1, "no run folders under"), (a_file, 2, "not a folder"),
                               (tmp_path / "missing", 2, "no such folder")):
        with corpus.case("run folders"):
            res = call(collect_main, [str(root)])
            assert_no_traceback(res)
            assert res.code == code and len(res.err.splitlines()) == 1 and needle in res.err, res.err
            assert res.err.startswith("mtl-collect: error: " if code == 2 else "mtl-collect: ")


CONTRACT_FILES = ["config.yaml", "status.json", "summary.json", "metrics.jsonl", "data.json"]


@FUZZ
@given(name=st.sampled_from(CONTRACT_FILES), content=st.one_of(
    st.binary(max_size=200), st.text(max_size=200).map(str.encode),
    st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                 lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
                 max_leaves=10).map(lambda v: json.dumps(v).encode())))
def test_fuzz_run_folder_files(name: str, content: bytes, corpus) -> None:
    """Any bytes in any contract file of one run folder: exit 0, the folder counted or listed, no writes."""
    with tempfile.TemporaryDirectory() as d, corpus.case("run folders fuzz"):
        results, bad = _study(Path(d))
        (bad / name).write_bytes(content)
        before = snapshot(results)
        res = call(collect_main, [str(results), "--format", "json"])
        assert_no_traceback(res)
        assert res.code == 0, res.err
        report = json.loads(res.out)
        shown = f"{results.as_posix()}/zz/bad_run"
        assert shown in json.dumps(report)          # counted (a table cell's run) or listed as a problem
        assert snapshot(results) == before

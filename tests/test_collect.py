"""mtl-collect: hand-written run folders -> golden markdown/CSV/JSON/LaTeX byte for byte; real tiny training
runs -> the right structure and numbers; bad folders never crash it and it never writes into results/.

Regenerate the goldens after an intended change: MTL_UPDATE_GOLDEN=1 pytest tests/test_collect.py
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats

from conftest import run_cli, sets
from mtl_cluster.cli.collect import collect_main
from mtl_cluster.collect.scan import find_run_folders, load_runs
from mtl_cluster.collect.compare import Cell, build_report, welch_ci
from mtl_cluster.collect.tables import cell_text, refs_text
from runfolders import config, write_fine_tuned_study, write_run, write_study

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("MTL_UPDATE_GOLDEN") == "1"


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    """A folder holding ``results/``: the hand-written study (all sections, every kind of bad folder)."""
    base = tmp_path_factory.mktemp("study")
    write_study(base / "results")
    return base


def collect(base: Path, monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """Run the CLI in-process from ``base`` so paths print as ``results/...`` (no temp paths in goldens)."""
    monkeypatch.chdir(base)
    rc = collect_main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"{path} missing: run with MTL_UPDATE_GOLDEN=1 once"
    assert text == path.read_text(encoding="utf-8"), f"{name} differs from the golden (MTL_UPDATE_GOLDEN=1 to accept)"


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))}


# -- goldens --------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt,select", [("md", "best"), ("csv", "best"), ("json", "best"), ("latex", "best"),
                                        ("md", "last")])
def test_golden(study, monkeypatch, capsys, fmt, select) -> None:
    rc, out, _ = collect(study, monkeypatch, capsys, "results", "--format", fmt, "--select", select)
    assert rc == 0
    check_golden(f"collect_{select}.{'tex' if fmt == 'latex' else fmt}", out)


def test_study_facts(study) -> None:
    """What the goldens encode, said explicitly."""
    runs = load_runs(study / "results")
    report = build_report(runs)
    assert [s.key for s in report.sections] == ["imdb_wiki", "pretrained_false", "pretrained_true"]
    assert [c.header for c in report.sections[1].columns] == [
        "Gender(%)(ChaLearn_2016 VALID/val)", "Smile(%)(ChaLearn_2016 VALID)", "Emotion Acc(%)(FER_2013 PrivateTest)",
        "Age Acc(%)(ChaLearn_2016 VALID/val)", "Age 10-group Acc(%)(ChaLearn_2016 VALID/val)",
        "Age MAE(ChaLearn_2016 VALID/val)", "Age MAE (expected)(ChaLearn_2016 VALID/val)"]
    states = {Path(p.path).name.split("_seed")[0] + ":" + p.state for p in runs.problems}
    assert {"AlexNet-Emotion:running", "AlexNet-Emotion:interrupted", "AlexNet-Smile:failed",
            "AlexNet-Smile:damaged", "AlexNet-Age:unknown", "no_config:damaged", "no_summary:damaged",
            "queued:not started", "AlexNet-Gender:duplicate"} == states
    rows = {r.label: r for r in report.sections[1].rows}
    gender = rows["AlexNet-Gender (lr_rate=0.001)"]
    assert gender.cells["gender_acc"].n == 3          # the copied folder is counted once
    mtl = rows["AlexNet-Gender_Smile_Emotion_Age"].cells["gender_acc"]
    assert mtl.mean == pytest.approx((84.3 + 84.9 + 83.7) / 3)   # test split at gender's own selected epoch
    delta = rows["Δ AlexNet-Gender_Smile_Emotion_Age − STL"]
    assert delta.against["gender_acc"] == "AlexNet-Gender (lr_rate=0.001)"
    assert delta.cells["smile_acc"].ci_low is None and delta.cells["smile_acc"].note == "n=1, no interval"
    emotion = delta.cells["emotion_acc"]                # -3.0 at both seeds: zero variance is not significant
    assert emotion.mean == pytest.approx(-3.0) and emotion.ci_low is None and "zero variance" in emotion.note
    assert delta.cells["age_mae"].ci_high < 0          # MTL's age MAE is lower in every seed
    assert "age_acc" in delta.cells and delta.against["age_acc"] == "AlexNet-Age"   # same age_loss_type only
    # protocol 1 runs are rows of their own, marked, never compared with protocol 2 rows
    old = rows["AlexNet-Age-10-classes-crossentropy [protocol 1: validation split]"]
    assert set(old.cells) == {"age_group_acc", "age_mae_argmax", "age_mae"}   # its age_acc was the 10-group one
    assert "AlexNet-Gender [protocol 1: validation split]" in rows
    budget = [[w for w in s.warnings if w.startswith("Warning")] for s in report.sections]   # not the schedule's
    assert report.protocol_1 and budget[0] and not budget[1]


def test_reports_test_numbers_at_each_tasks_validation_epoch(study) -> None:
    """Validation and test numbers differ in every run folder, and every task chose another epoch: the table
    holds each task's test value at that task's epoch, in the multitask and single-task rows alike."""
    from runfolders import SELECTED
    report = build_report(load_runs(study / "results"))
    sec = report.sections[1]
    for row in (r for r in sec.rows if r.kind == "result" and "protocol 1" not in r.label):
        refs = [ref for ref in sec.references if ref.num in row.refs]
        for c in sec.columns:
            if c.metric not in row.cells:
                continue
            expected = []
            for ref in refs:
                hist = [json.loads(line) for line in (study / ref.path / "metrics.jsonl").read_text().splitlines()]
                by = {(r["epoch"], r["split"]): r for r in hist}
                epoch = min((r for r in hist if r["split"] == "val"), key=lambda r: r[f"{c.task}_loss"])["epoch"]
                assert epoch == SELECTED[c.task]
                assert by[(epoch, "val")][c.metric] != by[(epoch, "test")][c.metric]
                expected.append(by[(epoch, "test")][c.metric])
            assert row.cells[c.metric].mean == pytest.approx(sum(expected) / len(expected)), (row.label, c.metric)


def test_paired_delta_matches_scipy(study) -> None:
    """The Δ cell is the paired t interval over the seeds both rows have; --stat welch is the unpaired one."""
    runs = load_runs(study / "results")
    df = runs.frame
    pick = lambda name, lr=0.001: df[(df["name"] == name) & (df["section"] == "pretrained_false") & (  # noqa: E731
        df["config"].map(lambda c: c["lr_rate"]) == lr) & (df["protocol"] == 3)].set_index("seed")["gender_acc"]
    mtl, stl = pick("AlexNet-Gender_Smile_Emotion_Age"), pick("AlexNet-Gender")
    paired = stats.ttest_rel(mtl.sort_index(), stl.sort_index())
    ci = paired.confidence_interval(0.95)
    rows = {r.label: r for r in build_report(runs).sections[1].rows}
    cell = rows["Δ AlexNet-Gender_Smile_Emotion_Age − STL"].cells["gender_acc"]
    assert (cell.ci_low, cell.ci_high, cell.n) == (pytest.approx(ci.low), pytest.approx(ci.high), 3)
    assert cell.p_value == pytest.approx(paired.pvalue)
    rows = {r.label: r for r in build_report(runs, stat="welch").sections[1].rows}
    cell = rows["Δ AlexNet-Gender_Smile_Emotion_Age − STL"].cells["gender_acc"]
    welch = stats.ttest_ind(mtl, stl, equal_var=False)
    ci = welch.confidence_interval(0.95)
    assert (cell.ci_low, cell.ci_high) == (pytest.approx(ci.low), pytest.approx(ci.high))
    assert cell.p_value == pytest.approx(welch.pvalue)


def test_published_reference_rows(study) -> None:
    report = build_report(load_runs(study / "results"), reference="seed")
    rows = {r.label: r for r in report.sections[1].rows}
    mtl = rows["AlexNet-Gender_Smile_Emotion_Age (published, seed table)"]
    assert mtl.kind == "published" and mtl.cells["gender_acc"].mean == 84.3
    assert mtl.cells["age_mae_argmax"].mean == 7.0 and "age_mae" not in mtl.cells   # the seed's MAE is argmax
    assert rows["AlexNet-Emotion (published, seed table)"].cells["emotion_acc"].mean == 61.3
    assert not any(r.kind == "published" for s in report.sections if s.key != "pretrained_false" for r in s.rows)
    assert not any(r.kind == "published" for r in build_report(load_runs(study / "results")).sections[1].rows)
    # a section the seed's table has no numbers for says so, never silently
    assert any(w.startswith("--reference seed: the seed's table has no numbers") for w in report.sections[0].warnings)
    assert not any(w.startswith("--reference seed") for w in report.sections[1].warnings)


def test_reference_seed_on_synthetic_runs_says_why_nothing_is_added(real_study) -> None:
    report = build_report(load_runs(real_study / "results"), reference="seed")
    (sec,) = report.sections
    assert not any(r.kind == "published" for r in sec.rows)
    assert "--reference seed: no published rows here: the seed's table is for CVPR_16_ChaLearn, this section's " \
           "runs are on synthetic." in sec.warnings


def test_select_last_uses_the_final_epoch(study) -> None:
    report = build_report(load_runs(study / "results", select="last"))
    row = next(r for r in report.sections[2].rows if r.label == "AlexNet-Gender")
    assert row.cells["gender_acc"].mean == 85.5 - 5.0   # the final epoch's test value, not the selected one
    assert report.sections[2].references[0].selected == "3"


# -- numbers --------------------------------------------------------------------------------------
def test_welch_ci_matches_scipy() -> None:
    a, b = [84.3, 84.9, 83.7], [84.2, 83.6, 84.5, 84.0]
    low, high = welch_ci(a, b)
    ci = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert (low, high) == pytest.approx((ci.low, ci.high))
    assert welch_ci([1.0], [1.0, 2.0]) is None
    assert welch_ci([1.0, 1.0], [2.0, 2.0]) is None     # no variance: no interval, never "significant"


def test_cell_text() -> None:
    assert cell_text("gender_acc", Cell(mean=84.25, n=1)) == "84.2"
    assert cell_text("gender_acc", Cell(mean=84.3, n=3, std=0.61)) == "84.3 ± 0.6 (3)"
    assert cell_text("age_mae", Cell(mean=7.0, n=2, std=0.123)) == "7.00 ± 0.12 (2)"
    assert cell_text("age_mae", Cell(mean=-0.004, n=2, n_stl=2, ci_low=-0.3, ci_high=0.29), "delta") == \
        "+0.00 [-0.30, +0.29] (n=2)"
    assert cell_text("gender_acc", Cell(mean=1.25, n=1, n_stl=1, note="n=1, no interval"), "delta") == \
        "+1.2 (n=1, no interval)"
    assert cell_text("gender_acc", Cell(mean=-3, n=2, n_stl=2, note="zero variance, no interval"), "delta") == \
        "-3.0 (n=2, zero variance, no interval)"
    assert cell_text("gender_acc", Cell(mean=1, n=3, n_stl=2, ci_low=0.5, ci_high=1.5), "delta") == \
        "+1.0 [+0.5, +1.5] (n=3 vs 2)"
    assert cell_text("smile_acc", None) == ""
    assert refs_text([1, 2, 3]) == "[1-3]" and refs_text([4]) == "[4]" and refs_text([1, 4]) == "[1, 4]"


# -- robustness -----------------------------------------------------------------------------------
def test_never_writes_into_results(study, tmp_path, monkeypatch, capsys) -> None:
    before = snapshot(study / "results")
    rc, out, err = collect(study, monkeypatch, capsys, "results", "--plots", str(tmp_path / "plots"),
                           "--out", str(tmp_path / "table.md"))
    assert rc == 0
    assert snapshot(study / "results") == before
    assert (tmp_path / "table.md").read_text().startswith("# Multitask learning")
    pngs = sorted(p.name for p in (tmp_path / "plots").iterdir())
    assert "pretrained_false_gender.png" in pngs and "imdb_wiki_age.png" in pngs
    assert all((tmp_path / "plots" / p).read_bytes()[:4] == b"\x89PNG" for p in pngs)
    assert "AlexNet-Gender_Smile_Emotion_Age [1-3]" in out       # the rich table still shows
    assert "results/broken/no_config" in out and "damaged" in out
    assert "wrote" in err


def test_errors_are_one_line(tmp_path, monkeypatch, capsys) -> None:
    rc, _, err = collect(tmp_path, monkeypatch, capsys, "no/such/results")
    assert rc == 2 and err.strip().count("\n") == 0 and err.startswith("mtl-collect: error: no/such/results")
    (tmp_path / "file").write_text("x")
    rc, _, err = collect(tmp_path, monkeypatch, capsys, "file")
    assert rc == 2 and "not a folder" in err
    (tmp_path / "empty").mkdir()
    rc, out, err = collect(tmp_path, monkeypatch, capsys, "empty")
    assert rc == 1 and out == "" and "no run folders under empty" in err
    rc, _, err = collect(tmp_path, monkeypatch, capsys, "empty", "--format", "table", "--out", "x.md")
    assert rc == 2 and "--format table" in err


def test_out_suffix_picks_the_format(study, tmp_path, monkeypatch, capsys) -> None:
    rc, _, _ = collect(study, monkeypatch, capsys, "results", "--out", str(tmp_path / "t.csv"))
    assert rc == 0 and (tmp_path / "t.csv").read_text().startswith("section,dataset,row,kind")


def test_run_folder_as_root_and_symlink_loop(tmp_path, monkeypatch, capsys) -> None:
    run = write_run(tmp_path / "results", config(name="AlexNet-Gender", loss_weights=[1.0, 0, 0, 0]),
                    {"gender_acc": 90.0})
    (tmp_path / "results" / "loop").symlink_to(tmp_path / "results", target_is_directory=True)
    assert find_run_folders(tmp_path / "results") == [run]
    rc, out, _ = collect(run, monkeypatch, capsys, ".", "--format", "md")
    assert rc == 0 and "AlexNet-Gender [1] | 90.0" in out and "\n[1] .; epoch 2/3;" in out


GARBAGE = st.one_of(st.binary(max_size=40), st.sampled_from([b"", b"{}", b"[]", b"null", b'{"state": 3}',
                                                             b'{"best": {"val": {"gender_acc": "x"}}}',
                                                             b"signature: [", b"- a\n- b\n", b"\xff\xfe"]))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(which=st.sampled_from(["config.yaml", "status.json", "summary.json", "metrics.jsonl", "data.json"]),
       content=GARBAGE)
def test_damaged_files_never_crash(tmp_path_factory, which, content) -> None:
    root = tmp_path_factory.mktemp("garbage")
    run = write_run(root, config(name="AlexNet-Gender", loss_weights=[1.0, 0, 0, 0]), {"gender_acc": 90.0})
    (run / which).write_bytes(content)
    runs = load_runs(root)
    report = build_report(runs)
    assert runs.found == 1 and len(runs.frame) + sum(not p.counted for p in runs.problems) == 1
    assert all(p.path == run.as_posix() for p in report.problems)


# -- real runs ------------------------------------------------------------------------------------
REAL = ["image_size=64", "epoch=2", "steps_per_epoch=3", "data.synthetic_train_size=64",
        "data.synthetic_eval_size=24"]


@pytest.fixture(scope="module")
def real_study(tmp_path_factory) -> Path:
    """Three tiny real training runs (two multitask seeds, one single-task gender) in the default layout."""
    base = tmp_path_factory.mktemp("real")
    for extra in (["seed=0"], ["seed=1"], ["seed=0", "loss_weights=[1,0,0,0]", "name=AlexNet-Gender"]):
        res = run_cli([sys.executable, "-m", "mtl_cluster.train", "--results", str(base / "results"),
                       *sets(*REAL, *extra)])
        assert res.returncode == 0, res.stderr
    return base


def test_real_runs_table(real_study, monkeypatch, capsys) -> None:
    rc, out, _ = collect(real_study, monkeypatch, capsys, "results", "--format", "json")
    assert rc == 0
    report = json.loads(out)
    assert report["found"] == 3 and report["counted"] == 3 and report["problems"] == []
    (sec,) = report["sections"]
    assert sec["key"] == "pretrained_false" and sec["dataset"] == "synthetic"
    assert sec["title"].endswith("(dataset: synthetic)")
    assert [c["header"] for c in sec["columns"]] == [
        "Gender(%)(synthetic test)", "Smile(%)(synthetic test)", "Emotion Acc(%)(synthetic test)",
        "Age Acc(%)(synthetic test)", "Age MAE(synthetic test)", "Age MAE (expected)(synthetic test)"]
    labels = [r["label"] for r in sec["rows"]]
    assert labels == ["AlexNet-Gender_Smile_Emotion_Age", "AlexNet-Gender", "Δ AlexNet-Gender_Smile_Emotion_Age − STL"]
    summaries = {}
    for ref in sec["references"]:
        assert ref["path"].startswith("results/MTL_AlexNet_model/_gender_1_smile_")
        assert "Namespace(" in ref["config"] and f"signature='{ref['signature']}'" in ref["config"]
        summaries[ref["num"]] = json.loads((real_study / ref["path"] / "summary.json").read_text())
    mtl, stl, delta = sec["rows"]
    for metric in ("gender_acc", "smile_acc", "emotion_acc", "age_acc", "age_mae_argmax", "age_mae"):
        task = metric.split("_")[0]
        vals = [summaries[n]["selection"]["tasks"][task]["test"][metric] for n in mtl["refs"]]
        assert mtl["cells"][metric]["n"] == 2
        assert mtl["cells"][metric]["mean"] == pytest.approx(sum(vals) / 2, abs=1e-6)
    g = summaries[stl["refs"][0]]["selection"]["tasks"]["gender"]["test"]["gender_acc"]
    assert stl["cells"] == {"gender_acc": {"mean": pytest.approx(g, abs=1e-6), "n": 1, "std": None, "n_stl": None,
                                           "ci_low": None, "ci_high": None, "note": "", "p_value": None,
                                           "p_adjusted": None, "mde": None}}
    seed0 = next(summaries[n] for n, ref in zip(mtl["refs"], sec["references"]) if "_seed0_" in ref["path"])
    paired = seed0["selection"]["tasks"]["gender"]["test"]["gender_acc"] - g   # only seed 0 has both rows
    assert delta["cells"]["gender_acc"]["mean"] == pytest.approx(paired, abs=1e-5)
    assert delta["cells"]["gender_acc"]["n"] == 1 and delta["cells"]["gender_acc"]["note"] == "n=1, no interval"
    assert list(delta["cells"]) == ["gender_acc"]


def test_real_runs_markdown_and_plots(real_study, tmp_path, monkeypatch, capsys) -> None:
    rc, out, _ = collect(real_study, monkeypatch, capsys, "results", "--format", "md", "--plots", str(tmp_path))
    assert rc == 0
    assert "## experiment results, load_IMDB_WIKI_pretrained_model = False (dataset: synthetic)" in out
    firsts = [line.split(" | ")[0].rstrip() for line in out.splitlines() if " | " in line]
    assert firsts == ["model", "-" * len(firsts[4]), "AlexNet-Gender_Smile_Emotion_Age [1-2]", "AlexNet-Gender [3]",
                      "Δ AlexNet-Gender_Smile_Emotion_Age − STL"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["forest.png"] + [
        f"pretrained_false-synthetic_{t}.png" for t in ("age", "emotion", "gender", "smile")]


def test_real_runs_cost(real_study, monkeypatch, capsys) -> None:
    """--cost on real runs: the trainer's own records; on a CPU no GPU time, so the ratio is of wall-hours."""
    rc, out, _ = collect(real_study, monkeypatch, capsys, "results", "--cost", "--format", "json")
    assert rc == 0
    cost = json.loads(out)["cost"]
    (sec,) = cost["sections"]
    # a peak column's figure is its max (tests/test_efficiency.py), the others' a mean per run
    mtl, stl = ({k: c["mean"] if "mean" in c else c["max"] for k, c in r["cells"].items()} for r in sec["rows"])
    for cells in (mtl, stl):
        assert cells["gpu_hours"] == 0 and 0 < cells["wall_hours"] < 0.5 and cells["images_per_s"] > 0
        assert cells["epochs_recomputed"] == 0
        assert cells["host_peak_mib"] > 50 and "gpu_peak_mib" not in cells and "limit_used" not in cells   # CPU
    assert mtl["trainable_params"] > stl["trainable_params"] > 0
    (ratio,) = sec["ratios"]
    assert ratio["against"] == ["AlexNet-Gender"] and ratio["time_key"] == "wall_hours"
    # the JSON rounds hours to 6 decimals: a run of seconds (~1e-3 h) keeps 3 digits, so the ratio of the rounded
    # means can differ from the report's own ratio by a few per mille
    assert ratio["time_ratio"] == pytest.approx(mtl["wall_hours"] / stl["wall_hours"], rel=1e-2)
    assert cost["total"]["runs"] == cost["total"]["recorded"] == cost["total"]["attempts"] == 3


def test_runs_from_before_and_after_the_perf_keys_are_seeds_of_one_row(tmp_path: Path) -> None:
    """A study relaunched after the perf switches were added: old config.yaml lacks them, same signature."""
    old = config(seed=0)
    new = config(seed=1)
    new.update(amp="none", data_cache="auto", channels_last=True, compile=False, pin_memory=True)
    new["data"] = {**new["data"], "cache_dir": ".mtl_cache", "cache_max_gb": 64.0}
    write_run(tmp_path, old)
    write_run(tmp_path, new)
    frame = load_runs(tmp_path).frame
    assert len(frame) == 2 and frame["group"].nunique() == 1


def _per_image_study(results: Path, seeds: int = 2, copies: int = 1, images: int = 40) -> dict[str, list]:
    """Gender+age vs gender and age at ``seeds`` seeds with predictions.json on the same ``images`` test images;
    ``copies``: each seed's predictions written again under that many more seeds (identical replicates)."""
    import numpy as np
    rng = np.random.default_rng(5)
    mtl = dict(name="AlexNet-Gender_Age", loss_weights=[1.0, 0, 0, 1.0])
    drawn: dict[str, list] = {"mtl_c": [], "stl_c": [], "mtl_ae": [], "stl_ae": []}
    idx = list(range(images))
    for seed in range(seeds):
        c_m, c_s = rng.random(images) < 0.8, rng.random(images) < 0.7
        ae_m, ae_s = rng.gamma(2.0, 3.0, images).round(4), rng.gamma(2.0, 3.5, images).round(4)
        for copy in range(copies):
            at = seed + copy * seeds
            for cfg, c, ae in ((config(**mtl, seed=at), c_m, ae_m),
                               (config(name="AlexNet-Gender", loss_weights=[1.0, 0, 0, 0], seed=at), c_s, None),
                               (config(name="AlexNet-Age", loss_weights=[0, 0, 0, 1.0], seed=at), None, ae_s)):
                run = write_run(results, cfg, {"gender_acc": 80.0 + at % 3, "age_acc": 5.0, "age_mae_argmax": 7.0,
                                               "age_mae": 6.5 - 0.1 * (at % 2)})
                preds = {}
                if c is not None:
                    preds["gender"] = {"epoch": 2, "split": "VALID", "index": idx,
                                       "correct": "".join(map(str, c.astype(int)))}
                if ae is not None:
                    preds["age"] = {"epoch": 2, "split": "VALID", "index": idx, "correct": "0" * images,
                                    "ae": ae.tolist(), "ae_argmax": (ae + 1).tolist()}
                (run / "predictions.json").write_text(json.dumps(preds))
        drawn["mtl_c"].append(c_m)
        drawn["stl_c"].append(c_s)
        drawn["mtl_ae"].append(ae_m)
        drawn["stl_ae"].append(ae_s)
    return drawn


def _image_tests(results: Path) -> dict:
    from mtl_cluster.collect.image_tests import add_image_tests
    report = build_report(load_runs(results))
    add_image_tests(report, load_runs(results).frame)
    return {t.metric: t for t in report.sections[0].image_tests}


def test_per_image_tests_per_seed_and_across_seeds(tmp_path, monkeypatch, capsys) -> None:
    """Per seed: McNemar on that seed's per-image correctness (checked against statsmodels' exact and corrected
    tests) and a paired bootstrap on its age errors; across seeds: the two-way bootstrap over the seeds x images
    matrix, never the seeds pooled as more images; the across-seed p-values Holm-adjusted (statsmodels)."""
    import numpy as np
    from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar
    from statsmodels.stats.multitest import multipletests

    from mtl_cluster.collect.stats import crossed_bootstrap, paired_bootstrap
    drawn = _per_image_study(tmp_path / "results")
    tests = _image_tests(tmp_path / "results")
    g = tests["gender_acc"]
    assert (g.seeds, g.images) == (2, 40) and len(g.per_seed) == 2
    for one, a, b in zip(g.per_seed, drawn["mtl_c"], drawn["stl_c"]):
        n_b, n_c = int((a & ~b).sum()), int((~a & b).sum())
        table = [[int((a & b).sum()), n_b], [n_c, int((~a & ~b).sum())]]
        exact = n_b + n_c < 25
        expected = sm_mcnemar(table, exact=exact, correction=True).pvalue
        assert one.note == f"b={n_b} c={n_c}" and one.p_value == pytest.approx(expected) and one.images == 40
        assert one.diff == pytest.approx(100 * (a.mean() - b.mean()))
    matrix = np.array([100.0 * (a.astype(int) - b.astype(int)) for a, b in zip(drawn["mtl_c"], drawn["stl_c"])])
    across = crossed_bootstrap(matrix)
    assert (g.diff, g.low, g.high, g.p_value) == (pytest.approx(across.mean), across.low, across.high, across.p_value)
    m = tests["age_mae"]
    for one, a, b in zip(m.per_seed, drawn["mtl_ae"], drawn["stl_ae"]):
        boot = paired_bootstrap(a, b)
        assert (one.diff, one.low, one.high) == (pytest.approx(boot.mean), boot.low, boot.high)
    assert tests["age_mae_argmax"].diff == pytest.approx(m.diff)       # errors shifted by one on both sides
    assert (tests["age_acc"].diff, tests["age_acc"].per_seed[0].p_value) == (0.0, 1.0)   # no discordant images
    ps = [t.p_value for t in tests.values() if t.p_value is not None]
    adjusted = multipletests(ps, method="holm")[1]
    assert [t.p_adjusted for t in tests.values() if t.p_value is not None] == pytest.approx(list(adjusted))
    rc, out, _ = collect(tmp_path, monkeypatch, capsys, "results", "--format", "md")
    assert rc == 0 and "Per-image tests on the test split" in out
    assert "two-way bootstrap (seeds x images)" in out and "2 seeds, 40 images" in out and "Holm p=" in out


def test_repeating_a_seed_does_not_narrow_the_per_image_interval(tmp_path) -> None:
    """Seeds, not images, are the unit: one seed's predictions written three times over (three identical
    "seeds") give the across-seed interval of the one seed, not one narrower by √3 as pooling them as more
    images did (shown beside it with the pooled bootstrap the table used before)."""
    import numpy as np

    from mtl_cluster.collect.stats import paired_bootstrap
    drawn = _per_image_study(tmp_path / "once", seeds=1)
    _per_image_study(tmp_path / "thrice", seeds=1, copies=3)
    once, thrice = _image_tests(tmp_path / "once"), _image_tests(tmp_path / "thrice")
    for metric in ("gender_acc", "age_mae"):
        a, b = once[metric], thrice[metric]
        assert (a.seeds, b.seeds) == (1, 3)
        assert 0.9 < (b.high - b.low) / (a.high - a.low) < 1.1, (metric, a, b)
    mtl, stl = drawn["mtl_ae"][0], drawn["stl_ae"][0]
    one, pooled = paired_bootstrap(mtl, stl), paired_bootstrap(np.tile(mtl, 3), np.tile(stl, 3))
    assert (pooled.high - pooled.low) / (one.high - one.low) < 0.65        # the old way: about 1/√3 = 0.58


def test_fine_tuned_rows_from_different_parents_are_not_compared(tmp_path, monkeypatch, capsys) -> None:
    """A fine-tuned section whose single-task gender row starts from another pretraining than the multitask row:
    the gender Δ is refused with its reason (golden), smile (the same parent) is compared."""
    write_fine_tuned_study(tmp_path / "results")
    report = build_report(load_runs(tmp_path / "results"))
    delta = next(r for r in report.sections[0].rows if r.kind == "delta")
    assert set(delta.cells) == {"smile_acc"} and set(delta.refused) == {"gender_acc"}
    assert "IMDB-WIKI-AlexNet-Gender_Age" in delta.refused["gender_acc"]
    assert "IMDB-WIKI-AlexNet-Gender " in delta.refused["gender_acc"]
    rc, out, _ = collect(tmp_path, monkeypatch, capsys, "results", "--format", "md")
    assert rc == 0 and "Schedule:" not in out          # cosine rows: no plateau headline
    check_golden("collect_parents.md", out)


def test_a_plateau_section_is_headed_by_its_schedule(study) -> None:
    """The golden study's rows use the seed's plateau schedule (their config has no lr_scheduler: the default):
    each section says that its rows' rates follow their own validation losses."""
    report = build_report(load_runs(study / "results"))
    assert all(any(w.startswith("Schedule: every row uses lr_scheduler plateau") for w in s.warnings)
               for s in report.sections)


def test_runs_of_protocol_2_are_rows_of_their_own_and_never_paired(tmp_path) -> None:
    """Protocol 2 (hold-outs drawn per task) rows are marked and kept apart from protocol 3 rows."""
    mtl = dict(name="AlexNet-Gender_Smile_Emotion_Age", loss_weights=[1.0, 1.0, 1.0, 1.0])
    write_run(tmp_path, config(**mtl, seed=0), {"gender_acc": 84.0, "smile_acc": 85.0, "emotion_acc": 58.0,
                                                "age_acc": 4.0, "age_mae_argmax": 7.0, "age_mae": 6.5}, protocol=2)
    write_run(tmp_path, config(name="AlexNet-Gender", loss_weights=[1.0, 0, 0, 0], seed=0, lr_rate=0.002),
              {"gender_acc": 83.0})
    report = build_report(load_runs(tmp_path))
    labels = [r.label for r in report.sections[0].rows]
    assert labels == ["AlexNet-Gender", "AlexNet-Gender_Smile_Emotion_Age [protocol 2: hold-outs per task]"]
    assert report.protocol_2 and not report.protocol_1


def test_select_joint_takes_one_epoch_per_run(tmp_path) -> None:
    """--select joint: every task of a row from one epoch, the joint rule's, read from metrics.jsonl."""
    from mtl_cluster.rundir import joint_epoch
    from runfolders import SELECTED
    write_study(tmp_path / "results")
    frame = load_runs(tmp_path / "results", "joint").frame
    row = frame[(frame["name"] == "AlexNet-Gender_Smile_Emotion_Age") & (frame["seed"] == 0)].iloc[0]
    epochs = {row[f"epoch_{t}"] for t in ("gender", "smile", "emotion", "age")}
    assert len(epochs) == 1 and len(set(SELECTED.values())) > 1    # per task they differ; joint: one
    lines = [json.loads(x) for x in (Path(row["folder"]) / "metrics.jsonl").read_text().splitlines()]
    assert epochs == {joint_epoch([r for r in lines if r["split"] == "val"], ["gender", "smile", "emotion", "age"])}
    test = next(r for r in lines if r["split"] == "test" and r["epoch"] in epochs)
    assert row["gender_acc"] == test["gender_acc"] and row["smile_acc"] == test["smile_acc"]


def test_planted_headline_names_the_shared_cue_and_the_data_poor_tasks() -> None:
    """The table's headline says what was planted: the tasks one latent sets, whose cue shows it, and which of
    them train on fewer images (a task not in the shared list, or at the full size, is not part of it)."""
    from mtl_cluster.collect.scan import Planted, _planted
    from mtl_cluster.collect.compare import Report
    from mtl_cluster.collect.tables import smoke_lines, to_json

    data = {"synthetic_shared": ["gender", "smile"], "synthetic_train_size": 1024,
            "synthetic_task_sizes": {"smile": 16, "age": 8, "gender": 1024}}
    poor = _planted(True, data)
    assert poor == Planted(("gender", "smile"), (("smile", 16),))
    assert _planted(False, data) is None and _planted(True, {"synthetic_shared": []}) is None
    rich = _planted(True, {"synthetic_shared": ["age", "gender"]})
    assert rich == Planted(("age", "gender"))
    report = Report(select="best", rule="", found=2, counted=2, sections=[], problems=[], synthetic=True,
                    planted=(rich, poor))
    head = smoke_lines(report)
    assert len(head) == 3 and head[0].startswith("SMOKE TEST ON SYNTHETIC DATA")
    assert "= [age, gender], one latent per image sets all those labels and only the age cue shows it, so a " \
           "multitask row should beat its single-task rows on the tasks that learn that cue slowly alone." in head[1]
    assert "only the gender cue shows it, and smile trains on 16 images only, so a multitask row should beat its " \
           "single-task rows on the data-poor smile." in head[2]
    assert json.loads(to_json(report))["planted"][1] == {"shared": ["gender", "smile"], "data_poor": [["smile", 16]]}
    assert "planted" not in json.loads(to_json(Report(select="best", rule="", found=0, counted=0, sections=[],
                                                      problems=[])))


def test_seeds_for_prints_the_seeds_each_cell_needs(study, monkeypatch, capsys) -> None:
    """--seeds-for DELTA: per Δ cell with a paired spread, the seeds a paired t needs for 80% power at that
    effect (statsmodels' TTestPower agrees); a metric=value list sizes each metric on its own; bad values are
    one line, exit 2."""
    import math

    from statsmodels.stats.power import TTestPower
    report = build_report(load_runs(study / "results"))
    cell = next(r for r in report.sections[1].rows if r.kind == "delta").cells["gender_acc"]
    expected = max(2, math.ceil(TTestPower().solve_power(effect_size=2.0 / cell.std, power=0.8, alpha=0.05)))
    rc, out, _ = collect(study, monkeypatch, capsys, "results", "--seeds-for", "2")
    assert rc == 0 and "Seeds needed (80% power, paired t, two-sided α=0.05):" in out
    line = next(x for x in out.splitlines() if "Gender(%): Δ = 2 needs" in x and "= False" in x)
    assert f"needs {expected} seeds" in line, line
    assert "Emotion Acc(%): Δ = 2 needs no estimate" in out               # zero variance: nothing to size from
    rc, out, err = collect(study, monkeypatch, capsys, "results", "--seeds-for", "age_mae=0.5", "--format", "md")
    assert rc == 0 and out.startswith("# ")                    # stdout is the markdown; the sizes go to stderr
    assert "Age MAE (expected)(ChaLearn_2016 VALID/val)" not in err and "Age MAE (expected): Δ = 0.5 needs" in err
    assert "Gender(%): Δ" not in err
    for bad, says in (("0", "the effect must be a positive number"), ("smile=1", "'smile' is no metric"),
                      ("gender_acc=lots", "'lots' is not a number")):
        rc, _, err = collect(study, monkeypatch, capsys, "results", "--seeds-for", bad)
        assert rc == 2 and err.count("\n") <= 2 and says in err and "Traceback" not in err, err


def test_select_last_and_joint_test_the_predictions_of_their_own_epoch(tmp_path) -> None:
    """The per-image tests read the predictions of the epoch the table's rule picked: predictions.json's
    ``by_rule`` final (or joint) ones for --select last (joint), each task's selected ones for best."""
    from mtl_cluster.collect.image_tests import add_image_tests
    _per_image_study(tmp_path / "results", images=30)
    for preds_file in (tmp_path / "results").rglob("predictions.json"):
        preds = json.loads(preds_file.read_text())
        multitask = "gender" in preds and "age" in preds
        other = {t: {**p, "epoch": 3, "correct": ("1" if multitask else "0") * 30} for t, p in preds.items()}
        preds["by_rule"] = {"final": other, "joint": other}
        preds_file.write_text(json.dumps(preds))
    frame = load_runs(tmp_path / "results").frame
    diffs = {}
    for which in ("selected", "final", "joint"):
        report = build_report(load_runs(tmp_path / "results"))
        add_image_tests(report, frame, predictions=which)
        diffs[which] = {t.metric: t.diff for t in report.sections[0].image_tests}
    assert diffs["final"]["gender_acc"] == diffs["joint"]["gender_acc"] == 100.0
    assert diffs["selected"]["gender_acc"] != 100.0

"""Use against limits (issue 24): the peak columns of mtl-collect --cost from the attempts' usage records (the
highest over a row's runs and attempts; dashes for runs without them), and mtl-collect --right-size's proposal.

Regenerate the golden after an intended change: MTL_UPDATE_GOLDEN=1 pytest tests/test_efficiency.py
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from runfolders import INTERRUPTED, config, environment, write_run
from test_collect import check_golden, collect

from mtl_cluster.collect.compare import build_report
from mtl_cluster.collect.cost import add_cost, run_cost
from mtl_cluster.collect.rightsize import propose_mem_gb, propose_timeout, right_size_lines
from mtl_cluster.collect.scan import load_runs

MTL = dict(name="AlexNet-Gender_Smile_Emotion_Age", loss_weights=[1.0, 1.0, 1.0, 1.0])
GENDER = dict(name="AlexNet-Gender", loss_weights=[1.0, 0.0, 0.0, 0.0])
AGE = dict(name="AlexNet-Age", loss_weights=[0.0, 0.0, 0.0, 1.0])
SECTION = "experiment results, load_IMDB_WIKI_pretrained_model = False"


def _usage(elapsed: float, host: float, children: float | None = None, gpu: float | None = None,
           util: float | None = None) -> dict:
    return {"elapsed_s": elapsed, "host_peak_mib": host, "children_peak_mib": children, "gpu_peak_mib": gpu,
            "gpu_reserved_peak_mib": gpu, "gpu_util_mean": util}


def write_efficiency_study(results: Path) -> None:
    """The multitask row: seed 0 one attempt (1.5 h, 5300 s of it the trainer's, under a 2 h limit, 2000 + 500 MiB
    of host memory); seed 1 killed at its 1 h limit (no end line: its share is its wall time, 100%), then resumed
    (0.75 h, 3000 MiB). A CPU-only single-task row outside Slurm; an age row from before the usage records."""
    cfg = config(**MTL, seed=0)
    write_run(results, cfg, {}, envs=[environment(cfg, slurm={"time_limit_s": 7200, "mem_mib": 40960},
                                                  usage=_usage(5300, 2000, 500, 3000, 80))])
    cfg = config(**MTL, seed=1)
    write_run(results, cfg, {}, attempts=INTERRUPTED, envs=[
        environment(cfg, slurm={"time_limit_s": 3600, "mem_mib": 40960}),
        environment(cfg, slurm={"time_limit_s": 7200, "mem_mib": 40960}, usage=_usage(2700, 3000, 0, 3500, 60))])
    cfg = config(**GENDER, seed=0)
    write_run(results, cfg, {}, envs=[environment(cfg, gpu=None, driver=None, usage=_usage(2600, 1000))])
    write_run(results, config(**AGE, seed=0), {})


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("efficiency")
    write_efficiency_study(base / "results")
    return base


def test_peaks_are_the_highest_over_runs_and_attempts(study) -> None:
    runs = load_runs(study / "results")
    report = build_report(runs)
    add_cost(report, runs.frame)
    sec = report.sections[0]
    mtl = report.cost.cells(sec, "AlexNet-Gender_Smile_Emotion_Age")
    assert mtl["host_peak_mib"].mean == 3000 and mtl["host_peak_mib"].n == 2     # seed 1's 3000 > seed 0's 2500
    assert mtl["limit_used"].mean == pytest.approx(100.0)                        # the killed attempt: 1 h of 1 h
    assert mtl["gpu_peak_mib"].mean == 3500
    assert mtl["gpu_util"].mean == pytest.approx(70.0)                           # the mean of the runs' means
    gender = report.cost.cells(sec, "AlexNet-Gender")
    assert gender["host_peak_mib"].mean == 1000 and "limit_used" not in gender and "gpu_peak_mib" not in gender
    age = report.cost.cells(sec, "AlexNet-Age")
    assert "host_peak_mib" not in age and "wall_hours" in age                   # old records: a dash, not a guess
    seed0 = runs.frame[(runs.frame["seed"] == 0) & (runs.frame["name"] == MTL["name"])]["folder"].iloc[0]
    one = run_cost(Path(seed0))                 # its own seconds (5300 s of a 1.5 h wall) over its 2 h limit
    assert one.limit_used == pytest.approx(100 * 5300 / 7200) and one.host_peak_mib == 2500
    assert (one.time_limit_s, one.mem_limit_mib) == (7200, 40960)


def test_efficiency_columns_golden(study, monkeypatch, capsys) -> None:
    """The markdown with the optional columns (absent from every golden without usage records: those are as
    before); JSON names a peak column's figure max, not mean."""
    rc, out, _ = collect(study, monkeypatch, capsys, "results", "--cost", "--format", "md", "--no-image-tests")
    assert rc == 0
    check_golden("collect_efficiency.md", out)
    for header in ("Peak host MiB", "Time limit used (%)", "Peak GPU MiB", "GPU util (%)"):
        assert header in out
    rc, out, _ = collect(study, monkeypatch, capsys, "results", "--cost", "--format", "json", "--no-image-tests")
    cells = {r["row"]: r["cells"] for r in json.loads(out)["cost"]["sections"][0]["rows"]}
    mtl = cells["AlexNet-Gender_Smile_Emotion_Age"]
    assert mtl["host_peak_mib"]["max"] == 3000 and "mean" not in mtl["host_peak_mib"]
    assert "mean" in mtl["gpu_util"] and "mean" in mtl["wall_hours"]


def test_right_size_proposes_limits_and_writes_nothing(study, monkeypatch, capsys) -> None:
    """1.5x the longest run's wall time (all attempts) rounded up to 10 min; 1.25x the peak rounded up to 1 GB;
    '?' where the runs' own limits are unknown; a row without peaks says so."""
    assert propose_timeout(6300) == 160 and propose_timeout(1) == 10
    assert propose_mem_gb(3000) == 4 and propose_mem_gb(100) == 1
    runs = load_runs(study / "results")
    lines = right_size_lines(build_report(runs), runs.frame)
    assert lines[0].startswith("Right-size") and "Shorter limits start sooner" in lines[0]
    assert lines[1:] == [
        f"{SECTION} / AlexNet-Gender_Smile_Emotion_Age: timeout_min 120 -> 160 (longest run 1.75 h, 2 of 2 runs "
        f"timed); mem_gb 40 -> 4 (peak 3,000 MiB, 2 of 2 runs measured)",
        f"{SECTION} / AlexNet-Gender: timeout_min ? -> 70 (longest run 45.0 min, 1 of 1 runs timed); mem_gb ? -> 2 "
        f"(peak 1,000 MiB, 1 of 1 runs measured)",
        f"{SECTION} / AlexNet-Age: timeout_min ? -> 70 (longest run 45.0 min, 1 of 1 runs timed); mem_gb: no peak "
        f"memory recorded"]
    before = sorted((p, p.stat().st_mtime_ns) for p in (study / "results").rglob("*"))
    rc, out, _ = collect(study, monkeypatch, capsys, "results", "--right-size", "--no-image-tests")
    assert rc == 0 and "timeout_min 120 -> 160" in out
    assert sorted((p, p.stat().st_mtime_ns) for p in (study / "results").rglob("*")) == before

"""mtl-collect --cost: the cost columns and the study total byte for byte (goldens), the figures behind them,
the rules for an attempt's wall time and the epochs trained twice (hand-written records, and a real run
stopped past its last checkpoint), and dashes, not a crash, for runs without the records.

Regenerate the goldens after an intended change: MTL_UPDATE_GOLDEN=1 pytest tests/test_cost.py
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import REPO, TINY, run_cli, sets, train_cmd
from mtl_cluster.collect.scan import load_runs
from mtl_cluster.collect.compare import build_report
from mtl_cluster.collect.cost import add_cost, attempt_costs, run_cost
from mtl_cluster.collect.tables import FORMATS
from runfolders import INTERRUPTED, T0, config, params_of, write_cost_records, write_run, write_study
from test_collect import check_golden, collect

MTL = dict(name="AlexNet-Gender_Smile_Emotion_Age", loss_weights=[1.0, 1.0, 1.0, 1.0])
GENDER = dict(name="AlexNet-Gender", loss_weights=[1.0, 0.0, 0.0, 0.0])


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("study")
    write_study(base / "results")
    return base


@pytest.mark.parametrize("fmt", [f for f in FORMATS if f != "html"])   # the page: tests/test_report_html.py
def test_cost_golden(study, monkeypatch, capsys, fmt) -> None:
    rc, out, _ = collect(study, monkeypatch, capsys, "results", "--cost", "--format", fmt)
    assert rc == 0
    check_golden(f"collect_cost.{'tex' if fmt == 'latex' else fmt}", out)


def test_cost_figures(study) -> None:
    """What the goldens encode, said explicitly: means per run, the interrupted seed, the ratio, the total."""
    report = build_report(load_runs(study / "results"))
    add_cost(report, load_runs(study / "results").frame)
    sec = report.sections[1]
    cells = report.cost.cells(sec, "AlexNet-Gender_Smile_Emotion_Age")
    assert cells["gpu_hours"].mean == pytest.approx((1.5 + 1.75 + 1.5) / 3) and cells["gpu_hours"].n == 3
    assert cells["epochs_recomputed"].mean == pytest.approx(0.5 / 3)     # seed 1 trained half an epoch twice
    assert cells["trainable_params"].mean == params_of(config(**MTL))
    emotion = report.cost.cells(sec, "AlexNet-Emotion")
    assert (emotion["wall_hours"].n, emotion["wall_hours"].runs) == (1, 2)   # seed 1 is an old run
    assert report.cost.cells(report.sections[0], "AlexNet-Age") == {}          # no records at all: dashes
    assert report.cost.cells(sec, "Δ AlexNet-Gender_Smile_Emotion_Age − STL") is None
    (ratio,) = report.cost.of(sec).ratios
    assert ratio.against == ["AlexNet-Gender (lr_rate=0.001)", "AlexNet-Smile", "AlexNet-Emotion", "AlexNet-Age"]
    assert ratio.time_key == "gpu_hours" and ratio.time_ratio == pytest.approx(cells["gpu_hours"].mean / 3.0)
    stl = sum(params_of(config(**d)) for d in (GENDER, *(dict(loss_weights=w) for w in
                                                        ([0, 1.0, 0, 0], [0, 0, 1.0, 0], [0, 0, 0, 1.0]))))
    assert ratio.params_ratio == pytest.approx(params_of(config(**MTL)) / stl)
    t = report.cost.total
    assert (t.runs, t.recorded, t.attempts) == (22, 18, 19)
    assert t.gpu_hours == pytest.approx(t.wall_hours) and t.epochs_recomputed == pytest.approx(0.5)


def test_interrupted_attempt_counts_wall_time_and_the_epochs_trained_twice(tmp_path) -> None:
    """Killed after epoch 2's training, before its checkpoint: the resume from mid-epoch 2 trains 0.5 epoch again;
    the killed attempt (no end line) ends at the heartbeat the next attempt found; the queue wait is no one's."""
    cfg = config(**MTL)
    write_cost_records(tmp_path, cfg, INTERRUPTED, gpus=2)
    rc = run_cost(tmp_path, params_of(cfg))
    assert rc.attempts == 2 and rc.wall_hours == pytest.approx(1.75) and rc.gpu_hours == pytest.approx(3.5)
    assert rc.epochs_recomputed == pytest.approx(0.5)
    # no checkpoint survived: the second attempt starts over and trains both epochs again
    write_cost_records(tmp_path, cfg, [((0, 0), (2, 0), 1.0, False), ((0, 0), (3, 0), 1.5, True)])
    assert run_cost(tmp_path).epochs_recomputed == pytest.approx(2.0)
    # stopped cleanly at its checkpoint (SIGUSR2): nothing is trained twice
    write_cost_records(tmp_path, cfg, [((0, 0), (1, 300), 1.0, True), ((1, 300), (3, 0), 1.0, True)])
    assert run_cost(tmp_path).epochs_recomputed == pytest.approx(0.0)


def test_attempt_that_died_before_resuming_costs_time_not_epochs() -> None:
    """An attempt killed while loading data has a start line only: its wall time runs to the heartbeat the next
    attempt found, its GPUs are the run's, and it trained nothing."""
    at = lambda h: T0 + h * 3600  # noqa: E731
    lines = [{"event": "start", "attempt": 1, "at": at(0), "previous": {}},
             {"event": "start", "attempt": 2, "at": at(1), "previous": {"updated_at": "2026-01-05T08:15:00+0000"}},
             {"event": "resume", "attempt": 2, "at": at(1.1), "epoch": 0, "step": 0, "steps_per_epoch": 10, "gpus": 1},
             {"event": "end", "attempt": 2, "at": at(2), "epoch": 3, "step": 0}]
    wall, gpu, attempts, redone = attempt_costs(lines, [])
    assert attempts == 2 and wall == pytest.approx(1.25) and gpu == pytest.approx(1.25) and redone == 0.0


def test_cost_without_records_shows_dashes(tmp_path, monkeypatch, capsys) -> None:
    """Runs from before the records: every format and the terminal table show dashes, exit 0."""
    write_run(tmp_path / "results", config(**MTL), cost=False)
    write_run(tmp_path / "results", config(**GENDER), cost=False)
    for fmt in ("table", *FORMATS):
        rc, out, err = collect(tmp_path, monkeypatch, capsys, "results", "--cost", "--format", fmt)
        assert rc == 0 and "Traceback" not in err, err
        if fmt in ("table", "md", "latex", "html"):
            assert "2 runs recorded no attempt times" in out
            assert "no ratio: it or one of its 1 single-task row (AlexNet-Gender) recorded no cost" in out
        if fmt == "md":
            row = next(line for line in out.splitlines() if line.startswith("AlexNet-Gender [2]"))
            assert [c.strip() for c in row.split("|")][-5:] == ["-"] * 5
    rc, out, _ = collect(tmp_path, monkeypatch, capsys, "results", "--cost", "--format", "json")
    assert json.loads(out)["cost"]["total"] == {"runs": 2, "recorded": 0, "attempts": 0, "gpu_hours": 0.0,
                                                "wall_hours": 0.0, "epochs_recomputed": 0.0,
                                                "sacct_gpu_hours": None, "sacct_runs": 0}
    rc, out, _ = collect(tmp_path, monkeypatch, capsys, "results", "--format", "json")
    assert "cost" not in json.loads(out)   # without --cost the JSON is as before


def test_real_run_stopped_past_its_last_checkpoint(tmp_path) -> None:
    """A real trainer stopped (SIGUSR2) at a step, its newest checkpoint then lost (as if the write never landed):
    the resumed run's records give the epochs trained twice, the attempts, the wall time and the parameters."""
    from mtl_cluster.train.model import MTL_AlexNet_model

    run = tmp_path / "run"
    cmd = train_cmd(run, *sets(*TINY, "epoch=2"))   # checkpoints at epoch ends, and where the signal stops it
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    target = run / "checkpoints" / "ckpt-e0001-s000000.pt"   # epoch 1 done: stop it in epoch 2
    deadline = time.monotonic() + 240
    while not target.exists():
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert time.monotonic() < deadline, "no mid-epoch checkpoint appeared"
        time.sleep(0.02)
    proc.send_signal(signal.SIGUSR2)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 75, err
    status = json.loads((run / "status.json").read_text())
    reached = status["epoch"] + status["step"] / 6
    newest, older = sorted((run / "checkpoints").glob("ckpt-*.pt"), reverse=True)[:2]
    newest.unlink()
    e, s = map(int, re.match(r"ckpt-e(\d+)-s(\d+)\.pt", older.name).groups())
    res = run_cli(cmd)
    assert res.returncode == 0, res.stderr
    rc = run_cost(run, json.loads((run / "summary.json").read_text())["trainable_params"])
    assert rc.attempts == 2 and rc.epochs_recomputed == pytest.approx(reached - (e + s / 6)) and reached > e + s / 6
    assert 0 < rc.wall_hours < 0.1 and rc.gpu_hours == 0.0 and rc.images_per_s > 0   # CPU: no GPU held
    model = MTL_AlexNet_model(("gender", "smile", "emotion", "age"))
    assert rc.trainable_params == sum(p.numel() for p in model.parameters() if p.requires_grad)


def test_attempt_numbers_that_repeat_are_still_two_attempts() -> None:
    """status.json lost between attempts restarts the count at 1: attempts are told apart by their start lines."""
    at = lambda h: T0 + h * 3600  # noqa: E731
    lines = [{"event": "start", "attempt": 1, "at": at(0), "previous": {}},
             {"event": "resume", "attempt": 1, "at": at(0), "epoch": 0, "step": 0, "steps_per_epoch": 4, "gpus": 1},
             {"event": "end", "attempt": 1, "at": at(1), "epoch": 1, "step": 2},
             {"event": "start", "attempt": 1, "at": at(2), "previous": {}},
             {"event": "resume", "attempt": 1, "at": at(2), "epoch": 1, "step": 0, "steps_per_epoch": 4, "gpus": 1},
             {"event": "end", "attempt": 1, "at": at(3), "epoch": 2, "step": 0}]
    wall, gpu, attempts, redone = attempt_costs(lines, [])
    assert attempts == 2 and wall == pytest.approx(2.0) and redone == pytest.approx(0.5)


# -- Slurm's accounting beside the runs' own figures ------------------------------------------------
def test_sacct_lines_are_read_as_gpu_seconds_memory_and_cpu() -> None:
    """accounting.parse: elapsed x allocated GPUs and TotalCPU, a requeued job's instances (-D) summed, typed GRES
    counted, a job without GPUs 0, MaxRSS the highest of its steps (sacct keeps memory per step), and lines that
    are not a finished allocation skipped."""
    from mtl_cluster.launch.accounting import gpus_of, mib_of, parse, seconds_of
    text = ("12_0|100|cpu=1,gres/gpu=1,mem=2G,node=1|1|01:30.500|\n"
            "12_0.batch|100|cpu=1,gres/gpu=1,mem=2G,node=1|1|00:00.010|12000K\n"
            "12_0.0|100|cpu=1,gres/gpu=1,mem=2G,node=1|1|01:30.490|1048576K\n"
            "12_0|50|cpu=1,gres/gpu=1,mem=2G,node=1|1|00:40|\n"          # its requeued instance
            "12_0.0|50|cpu=1,gres/gpu=1,mem=2G,node=1|1|00:40|2G\n"
            "13|10|billing=4,cpu=4,gres/gpu:a100=2,mem=8G,node=1|4|1-00:00:01|\n"
            "14|30|cpu=1,mem=1G,node=1|1|00:10.000|\n"
            "15|Unknown||1||\n"
            "garbage\n")
    got = parse(text)
    assert got == {"12_0": {"gpu_s": 150.0, "cpu_s": 130.5, "cpu_held_s": 150.0, "max_rss_mib": 2048.0},
                   "13": {"gpu_s": 20.0, "cpu_s": 86401.0, "cpu_held_s": 40.0},
                   "14": {"gpu_s": 0.0, "cpu_s": 10.0, "cpu_held_s": 30.0}}, got
    assert gpus_of("cpu=2,gres/gpu=4,gres/gpu:v100=4,node=1") == 4      # the untyped total, not 8
    assert (mib_of("1194748K"), mib_of("2.5G"), mib_of("512M"), mib_of(""), mib_of("n/a")) == \
        (pytest.approx(1166.75, abs=0.01), 2560.0, 512.0, None, None)
    assert (seconds_of("00:06.312"), seconds_of("01:02:03"), seconds_of("2-00:00:00"), seconds_of("x")) == \
        (pytest.approx(6.312), 3723.0, 172800.0, None)


def test_sacct_gpu_hours_only_where_every_job_of_a_run_is_accounted(study, tmp_path) -> None:
    """The optional column appears once some run has Slurm's figure; a run with a job sacct does not know gets
    none (never a partial sum); without any figure the table is as before (the goldens)."""
    import shutil

    from mtl_cluster.collect.tables import to_markdown
    results = tmp_path / "results"
    shutil.copytree(study / "results", results)
    counted = {Path(f) for f in load_runs(results).frame["folder"]}          # the runs in the table
    folders = sorted(p.parent for p in results.rglob("attempts.jsonl") if p.parent in counted)
    for i, folder in enumerate(folders):                  # give every recorded attempt a Slurm job
        lines = [json.loads(x) for x in (folder / "attempts.jsonl").read_text().splitlines()]
        for n, rec in enumerate(lines):
            if rec["event"] == "start":
                rec["job_id"] = f"{100 + i}_{n}"
        (folder / "attempts.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    asked: list[list[str]] = []

    def accounted(ids):
        asked.append(list(ids))
        return {j: {"gpu_s": 3600.0, "cpu_s": 1800.0, "cpu_held_s": 3600.0, "max_rss_mib": 1000.0 + int(j[:3])}
                for j in ids if not j.startswith(f"{100 + len(folders) - 1}_")}   # the last run's: unknown

    runs = load_runs(results)
    report = build_report(runs)
    add_cost(report, runs.frame, accounted)
    assert len(asked) == 1                                 # one sacct query for the whole table
    got = {r.cells["sacct_gpu_hours"].n for s in report.cost.sections for r in s.rows if "sacct_gpu_hours" in r.cells}
    assert got and report.cost.total.sacct_runs == len(folders) - 1
    assert "GPU-hours (sacct)" in [c.header for c in report.cost.columns]
    assert "GPU-hours (sacct)" in to_markdown(report) and "by Slurm's accounting" in to_markdown(report)
    cells = [r.cells for s in report.cost.sections for r in s.rows if "sacct_rss_mib" in r.cells]
    assert cells and all(c["sacct_cpu_used"].mean == pytest.approx(50.0) for c in cells)
    assert all(1100 <= c["sacct_rss_mib"].mean < 1100 + len(folders) - 1 for c in cells)   # the row's highest
    assert {"MaxRSS MiB (sacct)", "CPU used (%, sacct)"} <= {c.header for c in report.cost.columns}
    bare = build_report(runs)
    add_cost(bare, runs.frame, lambda ids: None)          # sacct missing: no column at all
    assert "GPU-hours (sacct)" not in to_markdown(bare) and "MaxRSS MiB (sacct)" not in to_markdown(bare)

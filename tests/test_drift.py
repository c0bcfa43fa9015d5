"""The drift audit and the per-attempt records behind it (issue 24): every attempt records its environment and
use in attempts.jsonl; mtl-collect warns above a section whose runs (or one run's attempts) ran on different
software, GPUs or data, in every format that shows section warnings; the peaks show in --cost; --right-size
proposes limits from them.

Regenerate the goldens after an intended change: MTL_UPDATE_GOLDEN=1 pytest tests/test_drift.py
"""
from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest
from conftest import TINY, run_cli, sets, train_cmd
from runfolders import ENV, INTERRUPTED, config, environment, write_run, write_study
from test_collect import check_golden, collect

from mtl_cluster.collect.compare import build_report
from mtl_cluster.collect.drift import drift_lines
from mtl_cluster.collect.scan import load_runs
from mtl_cluster.rundir import ENV_FIELDS, USAGE_FIELDS, read_jsonl

MTL = dict(name="AlexNet-Gender_Smile_Emotion_Age", loss_weights=[1.0, 1.0, 1.0, 1.0])
GENDER = dict(name="AlexNet-Gender", loss_weights=[1.0, 0.0, 0.0, 0.0])
AGE = dict(name="AlexNet-Age", loss_weights=[0.0, 0.0, 0.0, 1.0])
V100 = dict(gpu="Tesla V100-SXM2-32GB", driver="550.54.15")
DIRTY = "3f1c0e9ad4b2c7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6a"


def write_drift_study(results: Path) -> None:
    """Three sections: one whose runs drift (a requeue onto another GPU model, torch upgraded for one run, a dirty
    tree and changed age training data in another; every host differs), one whose runs agree (their hosts
    differ: no line), one where a run from before the records stands beside a recorded one."""
    for seed in range(3):
        cfg = config(**MTL, seed=seed)
        envs = [environment(cfg, host=f"node{seed}")]
        if seed == 1:   # killed, requeued onto a V100 node
            envs.append(environment(cfg, host="node9", **V100))
        write_run(results, cfg, {}, attempts=INTERRUPTED if seed == 1 else None, envs=envs)
    for seed in range(2):
        cfg = config(**GENDER, seed=seed)
        newer = dict(torch="2.15.0+cu130", torchvision="0.30.0+cu130") if seed == 1 else {}
        write_run(results, cfg, {}, envs=[environment(cfg, host=f"node{3 + seed}", **newer)])
    for seed in range(2):
        cfg = config(**AGE, seed=seed)
        dirty = dict(git_diff=DIRTY, data_changes={"train:age": "00112233445566ff"}) if seed == 1 else {}
        write_run(results, cfg, {}, envs=[environment(cfg, host=f"node{5 + seed}", **dirty)])
    imdb = dict(dataset="IMDB-WIKI")
    for seed in range(2):
        cfg = config(**imdb, name="AlexNet-Gender_Age", loss_weights=[1.0, 0, 0, 1.0], seed=seed)
        write_run(results, cfg, {}, envs=[environment(cfg, host=f"imdb{seed}")])
    pre = dict(load_IMDB_WIKI_pretrained_model=True, init_from="AlexNet-Gender_Age")
    write_run(results, config(**MTL, **pre), {}, envs=[environment(config(**MTL, **pre))])
    write_run(results, config(**GENDER, **pre), {})       # from before the records


@pytest.fixture(scope="module")
def drift_study(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("drift")
    write_drift_study(base / "results")
    return base


M = "AlexNet-Gender_Smile_Emotion_Age"
EXPECTED = {
    "experiment results, load_IMDB_WIKI_pretrained_model = False": [
        f"Drift: torch 2.14.1+cu130 in 6 runs ({M} seeds 0, 1, 2 and 3 more), 2.15.0+cu130 in 1 "
        f"(AlexNet-Gender seed 1).",
        f"Drift: torchvision 0.29.1+cu130 in 6 runs ({M} seeds 0, 1, 2 and 3 more), 0.30.0+cu130 in 1 "
        f"(AlexNet-Gender seed 1).",
        f"Drift: GPU NVIDIA A100-SXM4-40GB in 7 runs ({M} seeds 0, 1, 2 and 4 more), Tesla V100-SXM2-32GB in 1 "
        f"({M} seed 1); changed between the attempts of {M} seed 1.",
        f"Drift: driver 580.65.06 in 7 runs ({M} seeds 0, 1, 2 and 4 more), 550.54.15 in 1 ({M} seed 1); changed "
        f"between the attempts of {M} seed 1.",
        f"Drift: uncommitted diff clean in 6 runs ({M} seeds 0, 1, 2 and 3 more), 3f1c0e9ad4b2 in 1 "
        f"(AlexNet-Age seed 1).",
        f"Drift: data train:age TRAIN_AGE in 4 runs ({M} seeds 0, 1, 2 and 1 more), 00112233445566ff in 1 "
        f"(AlexNet-Age seed 1)."],
    "pretrained AlexNet on the IMDB-WIKI dataset": [],
    "experiment results, load_IMDB_WIKI_pretrained_model = True": [
        "Drift: environment not recorded for 1 run (AlexNet-Gender seed 0); it is not audited."],
}


def _drift(section) -> list[str]:
    return [w for w in section.warnings if w.startswith("Drift:")]


def test_drift_lines_name_the_runs_and_the_difference(drift_study) -> None:
    """One line per differing field, the majority value first, at most 3 runs named; hosts are never compared;
    a requeue onto another GPU is named as a change within the run; agreeing sections get no line."""
    report = build_report(load_runs(drift_study / "results"))
    got = {sec.title: _drift(sec) for sec in report.sections}
    assert got.keys() == EXPECTED.keys()
    for title, lines in EXPECTED.items():
        assert got[title] == [line.replace("TRAIN_AGE", _train_age()) for line in lines], title
    assert not any("host" in w for sec in report.sections for w in sec.warnings)


def _train_age() -> str:
    """The fake data identity runfolders.environment gives ChaLearn's train:age split."""
    return environment(config(**AGE))["data"]["train:age"]


@pytest.mark.parametrize("fmt", ["md", "json", "latex", "html"])
def test_drift_warning_in_every_format_with_section_warnings(drift_study, monkeypatch, capsys, fmt) -> None:
    """The markdown is a golden; JSON, LaTeX and HTML carry the same lines where they carry section warnings;
    the terminal table shows them too."""
    rc, out, _ = collect(drift_study, monkeypatch, capsys, "results", "--format", fmt, "--no-image-tests")
    assert rc == 0
    if fmt == "md":
        check_golden("collect_drift.md", out)
        assert "> Drift: torch 2.14.1+cu130 in 6 runs" in out
    elif fmt == "json":
        warnings = [w for sec in json.loads(out)["sections"] for w in sec["warnings"] if w.startswith("Drift:")]
        assert len(warnings) == sum(map(len, EXPECTED.values()))
    elif fmt == "latex":
        assert "% Drift: torch 2.14.1+cu130 in 6 runs" in out
    else:
        assert '<p class="warning">Drift: torch 2.14.1+cu130 in 6 runs' in out
    rc, out, _ = collect(drift_study, monkeypatch, capsys, "results", "--no-image-tests")
    assert rc == 0 and "Drift: GPU NVIDIA A100-SXM4-40GB in 7 runs" in out.replace("\n", " ")


def test_identical_environments_leave_the_goldens_as_they_are(tmp_path, monkeypatch, capsys) -> None:
    """The golden study with every run's attempts recording one environment (hosts differing): the table is the
    one without records, byte for byte (tests/golden/collect_best.md): no drift line, nothing else changed."""
    results = tmp_path / "results"
    write_study(results)
    for summary in results.rglob("summary.json"):      # runs from before the cost records get a start line
        attempts = summary.parent / "attempts.jsonl"
        lines = read_jsonl(attempts) or [{"event": "start", "attempt": 1, "at": 0.0, "previous": {}}]
        for i, rec in enumerate(lines):
            if rec["event"] == "start":
                rec["env"] = {**ENV, "host": f"node{i}"}
        attempts.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in lines))
    rc, out, _ = collect(tmp_path, monkeypatch, capsys, "results", "--format", "md")
    assert rc == 0 and "Drift" not in out
    check_golden("collect_best.md", out)


def test_drift_lines_unit() -> None:
    """No records anywhere: nothing; one field differing in one run out of five: 'and N more' past three names;
    a data split only one run trained is not compared with runs that did not train it."""
    assert drift_lines([(("A", "0"), ()), (("B", "0"), ())]) == []
    runs = [(("A", str(i)), [{**ENV, "cudnn": "91000" if i == 4 else "92400"}]) for i in range(5)]
    assert drift_lines(runs) == ["Drift: cuDNN 92400 in 4 runs (A seeds 0, 1, 2 and 1 more), 91000 in 1 (A seed 4)."]
    only = [(("A", "0"), [{**ENV, "data train:age": "x"}]), (("B", "0"), [{**ENV, "data train:gender": "y"}])]
    assert drift_lines(only) == []
    # the same names and labels, other pixels: the cache key tells; a changed identity is said once, not twice
    cache = [(("A", "0"), [{**ENV, "data train:age": "x", "data cache train:age": "c1"}]),
             (("B", "0"), [{**ENV, "data train:age": "x", "data cache train:age": "c2"}])]
    assert drift_lines(cache) == ["Drift: data cache train:age c1 in 1 run (A seed 0), c2 in 1 (B seed 0)."]
    both = [(("A", "0"), [{**ENV, "data train:age": "x", "data cache train:age": "c1"}]),
            (("B", "0"), [{**ENV, "data train:age": "y", "data cache train:age": "c2"}])]
    assert drift_lines(both) == ["Drift: data train:age x in 1 run (A seed 0), y in 1 (B seed 0)."]
    assert {f.key for f in ENV_FIELDS if not f.drift} == {"host"}


# -- the records a real run writes -----------------------------------------------------------------------
def test_a_real_run_records_its_environment_and_use(tmp_path) -> None:
    """start: env (every ENV_FIELDS key; this checkout's commit; no GPU here) and slurm (null outside Slurm);
    resume: each split's data identity; end: usage (every USAGE_FIELDS key: the attempt's seconds and peak
    memory; the GPU ones null on the CPU). metrics.jsonl and summary.json gain nothing."""
    run = tmp_path / "run"
    res = run_cli(train_cmd(run, *sets(*TINY, "epoch=1")))
    assert res.returncode == 0, res.stderr
    start, resume, end = read_jsonl(run / "attempts.jsonl")
    assert set(start["env"]) == {f.key for f in ENV_FIELDS} and start["slurm"] is None
    env = start["env"]
    assert env["torch"] and env["python"] and env["host"]
    assert env["git_commit"] is None or len(env["git_commit"]) == 40
    assert set(resume["data"]) == {f"{sp}:{t}" for sp in ("train", "val", "test")
                                   for t in ("gender", "smile", "emotion", "age")}
    usage = end["usage"]
    assert set(usage) == set(USAGE_FIELDS)
    assert usage["elapsed_s"] > 0 and usage["host_peak_mib"] > 50
    if env["gpu"] is None:
        assert usage["gpu_peak_mib"] is None and usage["gpu_util_mean"] is None
    assert "env" not in (run / "summary.json").read_text() and "usage" not in (run / "metrics.jsonl").read_text()
    # a copy of the run under another results root is counted with its environment
    shutil.copytree(run, tmp_path / "results" / "run")
    frame = load_runs(tmp_path / "results").frame
    (envs,) = frame["environments"]
    assert envs[0]["torch"] == env["torch"] and envs[0]["data train:age"] == resume["data"]["train:age"]


def test_slurm_time_limits_parse() -> None:
    from mtl_cluster.train.environment import parse_time_limit
    assert parse_time_limit("1-02:03:04") == 93784
    assert parse_time_limit("2:00:00") == 7200
    assert parse_time_limit("30:00") == 1800
    assert parse_time_limit("45") == 2700
    assert parse_time_limit("UNLIMITED") is None and parse_time_limit("NOT_SET") is None


def test_slurm_limits_from_squeue_and_the_job_env(tmp_path, monkeypatch) -> None:
    """In a job: squeue's %l for the time limit (a stand-in squeue here: the real Slurm is not touched), the memory
    from SLURM_MEM_PER_NODE or per CPU x CPUs; outside a job nothing is asked; a failing squeue gives null."""
    from mtl_cluster.train.environment import slurm_limits
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    assert slurm_limits() is None
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "squeue").write_text('#!/bin/sh\n[ "$*" = "-h -j 4242 -o %l" ] && echo "1-00:00:00" || exit 1\n')
    (shim / "squeue").chmod(0o755)
    monkeypatch.setenv("PATH", f"{shim}:{os.environ['PATH']}")
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    monkeypatch.setenv("SLURM_MEM_PER_NODE", "16384")
    assert slurm_limits() == {"time_limit_s": 86400, "mem_mib": 16384.0}
    monkeypatch.delenv("SLURM_MEM_PER_NODE")
    monkeypatch.setenv("SLURM_MEM_PER_CPU", "2000")
    monkeypatch.setenv("SLURM_CPUS_ON_NODE", "4")
    monkeypatch.setenv("SLURM_JOB_ID", "999")          # squeue fails for it
    assert slurm_limits() == {"time_limit_s": None, "mem_mib": 8000.0}


def test_git_state_of_a_checkout(tmp_path) -> None:
    """The commit, a diff hash only while the tree is dirty, and nothing for a folder that is not its own
    checkout (a package inside another repository, or in site-packages)."""
    import subprocess

    from mtl_cluster.train.environment import git_state
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(repo)]
    subprocess.run([*git, "init", "-q"], check=True)
    (repo / "a.txt").write_text("one\n")
    subprocess.run([*git, "add", "a.txt"], check=True)
    subprocess.run([*git, "commit", "-qm", "one"], check=True)
    commit, diff = git_state(repo)
    assert commit and len(commit) == 40 and diff is None
    (repo / "a.txt").write_text("two\n")
    commit2, diff2 = git_state(repo)
    assert commit2 == commit and diff2 and len(diff2) == 64
    (repo / "sub").mkdir()
    assert git_state(repo / "sub") == (None, None)          # inside a checkout, not the top of one
    assert git_state(tmp_path) == (None, None)              # no checkout at all


def test_each_run_of_one_worker_process_records_its_own_peak(tmp_path) -> None:
    """`mtl-train --worker` trains a large run (224 px, batch 32: ~1.8 GB) and then a small one in one process:
    the small run's recorded peak is its own (the high-water mark is reset at each attempt's start), well below
    the large run's, and near the same small run's peak in a process of its own."""
    import yaml

    from mtl_cluster.config import load_train_config

    def config(name: str, *pairs: str) -> Path:
        path = tmp_path / f"{name}.yaml"
        cfg = load_train_config(None, [*TINY, "epoch=1", "steps_per_epoch=3", "num_workers=0", *pairs])
        path.write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
        return path

    big, small = config("big", "image_size=224", "batch_size=32"), config("small")
    stdin = "".join(json.dumps({"config": str(c), "run_dir": str(tmp_path / "w" / c.stem)}) + "\n"
                    for c in (big, small))
    res = run_cli(train_cmd(tmp_path / "unused", "--worker"), input=stdin)
    assert res.returncode == 0, res.stderr[-2000:]
    res = run_cli([sys.executable, "-m", "mtl_cluster.train", "--config", str(small), "--run-dir",
                   str(tmp_path / "alone")])
    assert res.returncode == 0, res.stderr[-2000:]

    def peak(run: Path) -> float:
        (end,) = [a for a in read_jsonl(run / "attempts.jsonl") if a["event"] == "end"]
        return float(end["usage"]["host_peak_mib"])

    big_peak, small_peak, alone = peak(tmp_path / "w" / "big"), peak(tmp_path / "w" / "small"), peak(tmp_path / "alone")
    assert big_peak > small_peak + 300, (big_peak, small_peak)
    assert abs(small_peak - alone) < 0.25 * alone, (small_peak, alone)


NVIDIA_SMI = """#!/bin/sh
# a stand-in for nvidia-smi (this machine has no GPU): answers only for the card it is asked about by UUID
echo "$@" >> "$(dirname "$0")/calls"
case "$*" in
  *"--query-gpu=utilization.gpu --format=csv,noheader,nounits -i GPU-1234"*) echo "73" ;;
  *"--query-gpu=driver_version --format=csv,noheader -i GPU-1234"*) echo "550.54.15" ;;
  *) echo "No devices were found" >&2; exit 6 ;;
esac
"""


def test_the_gpu_probes_ask_nvidia_smi_about_their_own_card(tmp_path, monkeypatch) -> None:
    """Without NVML (pynvml is not installed here), the driver and the utilisation come from nvidia-smi, asked
    about the run's card by its UUID (CUDA_VISIBLE_DEVICES renumbers cards; a UUID does not): a stand-in on PATH
    answers for GPU-1234 only. A renumbered card without a UUID is not sampled at all (it could be another's)."""
    from mtl_cluster.train.environment import GpuSampler, driver_version
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "nvidia-smi").write_text(NVIDIA_SMI)
    (bin_dir / "nvidia-smi").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    assert driver_version("GPU-1234") == "550.54.15"
    assert driver_version("GPU-9999") is None                       # nvidia-smi fails for another card
    probe = GpuSampler._probe("GPU-1234", 0)
    assert probe is not None
    read, every = probe
    assert read() == 73.0 and every == 15.0
    calls = (bin_dir / "calls").read_text().splitlines()
    assert calls[-1] == "--query-gpu=utilization.gpu --format=csv,noheader,nounits -i GPU-1234", calls
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    assert GpuSampler._probe(None, 0) is None

"""The bad input corpus, part 1: experiments.yaml (mtl-launch --dry-run, mtl-status) and training configs
(mtl-train --config / --set), hand-written cases plus hypothesis fuzzing, all in-process.

Every case must end as expected: rejected input is exit 2, one ``mtl-<tool>: error: ...`` line naming
the problem, no traceback, and nothing written (no results/, jobs/ or logs/ for input refused at load
time); accepted input never puts a run folder outside results/. Tallies: the ``corpus`` fixture.
Datasets and run folders are in test_bad_input_files.py, the security checks in test_security.py.
"""
from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import given, strategies as st

from badinput import FUZZ, assert_inside, assert_nothing_half_written, assert_one_line_error, call
from mtl_cluster.cli.train import train_main
from mtl_cluster.cli.launch import launch_main
from mtl_cluster.cli.status import status_main
from mtl_cluster.config import RUN_NAME, load_train_config
from mtl_cluster.launch.study import load_experiments
from mtl_cluster.launch.grid import expand
from mtl_cluster.rundir import default_run_dir
from test_experiments import GOOD as BASE

GOOD = BASE + "  farm: {executor: slurm, partition: gpu, mem_gb: 4}\n"   # a local and a Slurm profile
BOMB = "".join(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}" if i else "x"] * 9) + "]\n" for i in range(9))
NASTY_NAMES = ["../x", "../../../../tmp/escape", "/tmp/abs", "a/b", "a b", "x$(touch /tmp/pwned)", "x`id`",
               "a;rm -rf x", "..", ".", ".hidden", "-rf", "a\\b", "a\tb", "x" * 300, "Å" * 100, "a|b", "a>b",
               "'q'", '"q"', "a*", "~root"]


def _paths(tmp: Path) -> list[str]:
    return ["--results", str(tmp / "results"), "--jobs-dir", str(tmp / "jobs")]


def _launch(tmp: Path, exp: Path, *extra: str):
    return call(launch_main, [str(exp), "--dry-run", "--no-preflight", *_paths(tmp), "--logs-dir",
                              str(tmp / "logs"), *extra])


def sbatch_lines(out: str) -> list[str]:
    """The lines of the sbatch scripts a --dry-run printed (headings and the plan table left out)."""
    scripts = out.split("\n# ---- sbatch script ")[1:]
    assert scripts, out
    return [line for s in scripts for line in s.splitlines()[1:]]


def _nothing_written(tmp: Path) -> None:
    for name in ("results", "jobs", "logs"):
        assert not (tmp / name).exists(), f"{name}/ created for rejected input"
    assert_nothing_half_written(tmp)


def _reject_everywhere(tmp: Path, exp: Path, needle: str, corpus, category: str, cluster: str = "here") -> None:
    """The same file through mtl-launch --debug, mtl-launch --cluster and mtl-status: rejected by all."""
    for tool, res in (("launch", lambda: _launch(tmp, exp, "--debug")),
                      ("launch", lambda: _launch(tmp, exp, "--cluster", cluster)),
                      ("status", lambda: call(status_main, [str(exp), *_paths(tmp)]))):
        with corpus.case(category):
            assert_one_line_error(res(), tool, needle)
            _nothing_written(tmp)


# -- experiments.yaml: hand-written --------------------------------------------------------------------
EXPERIMENT_CASES = [
    # (id, text, needle)
    ("syntax", "defaults: [1, 2\n", "invalid YAML"),
    ("tab", "defaults:\n\tepoch: 2\n", "invalid YAML"),
    ("empty", "", "expected a mapping"),
    ("comment-only", "# nothing here\n", "expected a mapping"),
    ("top-list", "- name: A\n- name: B\n", "expected a mapping"),
    ("top-scalar", "42\n", "expected a mapping"),
    ("experiments-mapping", "experiments: {name: A}\n", "expected a non-empty list"),
    ("experiments-empty", "experiments: []\n", "expected a non-empty list"),
    ("entry-string", "experiments: [A]\n", "expected a mapping of training keys"),
    ("no-name", "experiments: [{epoch: 2}]\n", "needs a name"),
    ("name-int", "experiments: [{name: 12}]\n", "expected str"),
    ("defaults-list", "defaults: [1]\nexperiments: [{name: A}]\n", "defaults"),
    ("epoch-str", "experiments: [{name: A, epoch: two}]\n", "expected int"),
    ("batch-float", "experiments: [{name: A, batch_size: 1.5}]\n", "expected int"),
    ("weights-str", "experiments: [{name: A, loss_weights: all}]\n", "expected 4 weights"),
    ("weights-5", "experiments: [{name: A, loss_weights: [1, 1, 1, 1, 1]}]\n", "expected 4 weights"),
    ("seed-bool", "experiments: [{name: A, seed: true}]\n", "expected int"),
    ("lr-list", "experiments: [{name: A, lr_rate: [1]}]\n", "expected float"),
    ("data-list", "experiments: [{name: A, data: [1]}]\n", "expected a mapping"),
    ("epoch-negative", "experiments: [{name: A, epoch: -1}]\n", "epoch: must be >= 1"),
    ("seed-negative", "experiments: [{name: A, seed: -1}]\n", "seed: must be >= 0"),
    ("lr-negative", "experiments: [{name: A, lr_rate: -0.1}]\n", "lr_rate: must be > 0"),
    ("lr-inf", "experiments: [{name: A, lr_rate: .inf}]\n", "finite"),
    ("lr-nan", "experiments: [{name: A, lr_rate: .nan}]\n", "finite"),
    ("lr-overflow", "experiments: [{name: A, lr_rate: 1.0e+999}]\n", "finite"),
    ("seed-huge", "experiments: [{name: A, seed: 100000000000000000000000000000}]\n", "seed: must be <="),
    ("batch-huge", "experiments: [{name: A, batch_size: 1000000000}]\n", "batch_size: must be <="),
    ("workers-huge", "experiments: [{name: A, num_workers: 1000000}]\n", "num_workers: must be <="),
    ("image-huge", "experiments: [{name: A, image_size: 100000}]\n", "image_size: must be <="),
    ("synthetic-huge", "experiments: [{name: A, data: {synthetic_train_size: 1000000000000}}]\n",
     "synthetic_train_size: must be <="),
    ("momentum-1", "experiments: [{name: A, momentum: 1}]\n", "momentum"),
    ("dup-key", "defaults:\n  epoch: 1\n  epoch: 2\nexperiments: [{name: A}]\n", "key given twice"),
    ("dup-top", "experiments: [{name: A}]\nexperiments: [{name: B}]\n", "key given twice"),
    ("dup-name", "experiments: [{name: A}, {name: A}]\n", "duplicate name"),
    ("unknown-top", "experiment: [{name: A}]\n", "unknown key"),
    ("unknown-key", "experiments: [{name: A, epochs: 2}]\n", "unknown key"),
    ("alias-bomb", BOMB + "experiments: [{name: A}]\n", "alias bomb"),
    ("deep-nesting", "experiments: [{name: A}]\nx: " + "[" * 3000 + "]" * 3000 + "\n", "nested too deeply"),
    ("python-tag", "experiments: [{name: !!python/object/apply:os.system ['true']}]\n", "invalid YAML"),
    ("cycle", "experiments: [{name: A, init_from: B}, {name: B, init_from: A}]\n", "init_from cycle"),
    ("self-cycle", "experiments: [{name: A, init_from: A}]\n", "init_from cycle"),
    ("init-unknown", "experiments: [{name: A, init_from: Z}]\n", "names no run 'Z'"),
    ("init-checkpoint", "experiments: [{name: A, init_checkpoint: /x}]\n", "set by the launcher"),
    ("grid-scalar", "experiments: [{name: A}]\ngrid: {seed: 3}\n", "non-empty list"),
    ("grid-empty", "experiments: [{name: A}]\ngrid: {seed: []}\n", "non-empty list"),
    ("grid-axis", "experiments: [{name: A}]\ngrid: {colour: [1]}\n", "unknown grid axis"),
    ("grid-type", "experiments: [{name: A}]\ngrid: {seed: [a]}\n", "expected int"),
    ("grid-negative", "experiments: [{name: A}]\ngrid: {seed: [0, -1]}\n", "seed: must be >= 0"),
    ("debug-name", "experiments: [{name: A}]\ndebug: {name: x}\n", "cannot be overridden"),
    ("debug-list", "experiments: [{name: A}]\ndebug: [1]\n", "debug"),
    ("clusters-list", "experiments: [{name: A}]\nclusters: [a]\n", "clusters"),
    ("executor", "experiments: [{name: A}]\nclusters: {here: {executor: pbs}}\n", "executor"),
    ("mem-negative", "experiments: [{name: A}]\nclusters: {here: {executor: local, mem_gb: -1}}\n", "mem_gb"),
    ("mem-inf", "experiments: [{name: A}]\nclusters: {here: {executor: local, mem_gb: .inf}}\n", "mem_gb"),
    ("mem-nan", "experiments: [{name: A}]\nclusters: {here: {executor: local, mem_gb: .nan}}\n", "mem_gb"),
    ("timeout-0", "experiments: [{name: A}]\nclusters: {here: {executor: local, timeout_min: 0}}\n", "timeout_min"),
    ("timeout-huge", "experiments: [{name: A}]\nclusters: {here: {executor: local, timeout_min: 99999999999}}\n",
     "timeout_min"),
    ("cpus-negative", "experiments: [{name: A}]\nclusters: {here: {executor: local, cpus_per_task: -2}}\n",
     "cpus_per_task"),
    ("setup-string", "experiments: [{name: A}]\nclusters: {here: {executor: local, setup: module load x}}\n",
     "setup"),
    ("setup-ints", "experiments: [{name: A}]\nclusters: {here: {executor: local, setup: [1]}}\n", "setup"),
    ("sbatch-option", "experiments: [{name: A}]\nclusters: {here: {executor: local, additional: {'x y': 1}}}\n",
     "sbatch option"),
    ("cluster-key", "experiments: [{name: A}]\nclusters: {here: {executor: local, partitions: gpu}}\n",
     "unknown key"),
    ("cluster-name-dotdot", "experiments: [{name: A}]\nclusters: {'../../x': {executor: local}}\n",
     "not a usable cluster name"),
    ("cluster-name-shell", "experiments: [{name: A}]\nclusters: {'x$(id)': {executor: local}}\n",
     "not a usable cluster name"),
]


@pytest.mark.parametrize("text, needle", [c[1:] for c in EXPERIMENT_CASES], ids=[c[0] for c in EXPERIMENT_CASES])
def test_experiments_file_mistakes_are_one_line(text: str, needle: str, tmp_path: Path, corpus) -> None:
    exp = tmp_path / "experiments.yaml"
    if text.startswith("experiments:") and "clusters:" not in text:   # so --cluster here gets to the values
        text += "clusters: {here: {executor: local}}\n"
    exp.write_text(text, encoding="utf-8")
    _reject_everywhere(tmp_path, exp, needle, corpus, "experiments.yaml")


@pytest.mark.parametrize("name", NASTY_NAMES)
@pytest.mark.parametrize("with_id", [False, True])
def test_unsafe_run_names_are_refused(name: str, with_id: bool, tmp_path: Path, corpus) -> None:
    """A name that is not one plain folder name is refused, whether or not an ``id`` stands in for it."""
    exp = tmp_path / "experiments.yaml"
    entry = {"name": name, **({"id": "ok"} if with_id else {})}
    exp.write_text(yaml.safe_dump({"defaults": {"dataset": "synthetic"}, "experiments": [entry],
                                   "clusters": {"here": {"executor": "local"}}}, allow_unicode=True))
    _reject_everywhere(tmp_path, exp, "name", corpus, "run names")


def test_file_problems_are_one_line(tmp_path: Path, corpus) -> None:
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00garbage\x89PNG\r\n")
    folder = tmp_path / "folder.yaml"
    folder.mkdir()
    for path, needle in ((tmp_path / "missing.yaml", "no such file"), (binary, "cannot read"),
                         (folder, "cannot read")):
        _reject_everywhere(tmp_path, path, needle, corpus, "experiments.yaml")


def test_unknown_cluster_names_the_valid_ones(tmp_path: Path, corpus) -> None:
    exp = tmp_path / "experiments.yaml"
    exp.write_text(GOOD)
    with corpus.case("experiments.yaml"):
        assert_one_line_error(_launch(tmp_path, exp, "--cluster", "nowhere"), "launch", "no cluster 'nowhere'",
                              "valid: farm, here")
        _nothing_written(tmp_path)
    with corpus.case("experiments.yaml"):
        assert_one_line_error(call(status_main, [str(exp), "--cluster", "nowhere", *_paths(tmp_path)]), "status",
                              "no cluster 'nowhere'")
        _nothing_written(tmp_path)


@pytest.mark.parametrize("name", ["Ålex-Gesicht", "Модель_1", "顔-モデル", "AlexNet-Gender_Smile_Emotion_Age",
                                  "a.b+c-d"])
def test_unicode_and_punctuated_names_are_accepted_inside_results(name: str, tmp_path: Path, corpus) -> None:
    """Letters of any script are fine in a run name: it is one folder under results/, never a shell word."""
    exp = tmp_path / "experiments.yaml"
    exp.write_text(GOOD.replace("name: A\n", f"name: {name}\n").replace("init_from: A", f"init_from: {name}"),
                   encoding="utf-8")
    with corpus.case("run names"):
        res = _launch(tmp_path, exp, "--cluster", "farm")
        assert res.code == 0, res.err
        specs = expand(load_experiments(exp), tmp_path / "results")
        assert {s.name for s in specs} == {name, "B"}
        for s in specs:
            assert_inside(s.run_dir, tmp_path / "results")
            assert s.run_dir.name.startswith(f"{s.config.name}_seed")
        for line in sbatch_lines(res.out):   # the name reaches no script line but the dry run's placeholder
            assert name not in line or line.startswith(("#SBATCH --dependency='afterok:<job of ",
                                                        "#SBATCH --dependency='aftercorr:<array of ",
                                                        "#SBATCH --job-name=")), line
            if line.startswith("#SBATCH --job-name="):   # ... and the job name, made of safe characters only
                assert re.fullmatch(r"#SBATCH --job-name=mtl:experiments(:[A-Za-z0-9_.+-]+)?", line), line
        _nothing_written(tmp_path)


# -- experiments.yaml: fuzzing ------------------------------------------------------------------------
NASTY_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-2**70, max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
    st.sampled_from(NASTY_NAMES + ["synthetic", "local", "slurm", "A", "B", "[/x]", "[bold]"]),
    st.lists(st.integers(min_value=-3, max_value=3), max_size=5),
    st.dictionaries(st.sampled_from(["epoch", "root", "x", "executor"]), st.integers(-1, 3), max_size=2),
)
EXP_SLOTS = [("defaults", "epoch"), ("defaults", "seed"), ("defaults", "loss_weights"), ("defaults", "data"),
             ("defaults", "lr_rate"), ("defaults", "batch_size"), ("exp0", "name"), ("exp0", "id"),
             ("exp1", "init_from"), ("exp0", "loss_weights"), ("exp1", "name"), ("grid", "seed"),
             ("grid", "data.root"), ("here", "executor"), ("farm", "mem_gb"), ("farm", "timeout_min"),
             ("farm", "partition"), ("farm", "setup"), ("farm", "additional"), ("debug", "epoch"),
             ("top", "experiments"), ("top", "clusters"), ("top", "grid"), ("top", "debug")]


def _mutated(slot: tuple[str, str], value) -> dict:
    doc = yaml.safe_load(GOOD)
    where, key = slot
    node = {"defaults": doc["defaults"], "exp0": doc["experiments"][0], "exp1": doc["experiments"][1],
            "grid": doc["grid"], "here": doc["clusters"]["here"], "farm": doc["clusters"]["farm"],
            "debug": doc.setdefault("debug", {}), "top": doc}[where]
    node[key] = value
    return doc


def _check_experiments_outcome(tmp: Path, exp: Path, res, tool: str) -> None:
    """Rejected: the one-line contract and nothing written. Accepted: every run folder inside results/."""
    if res.code != 0:
        assert_one_line_error(res, tool)
        _nothing_written(tmp)
        return
    assert "Traceback" not in res.out + res.err
    for spec in expand(load_experiments(exp), tmp / "results"):
        assert_inside(spec.run_dir, tmp / "results")
        assert RUN_NAME.match(spec.config.name)
    _nothing_written(tmp)


@FUZZ
@given(slot=st.sampled_from(EXP_SLOTS), value=NASTY_VALUES)
def test_fuzz_experiments_values(slot, value, corpus) -> None:
    """One key of a valid file replaced by a nasty value: launched (dry run) and status'd, never a crash."""
    with tempfile.TemporaryDirectory() as d, corpus.case("experiments.yaml fuzz"):
        tmp = Path(d)
        exp = tmp / "experiments.yaml"
        exp.write_text(yaml.safe_dump(_mutated(slot, value), allow_unicode=True), encoding="utf-8")
        _check_experiments_outcome(tmp, exp, _launch(tmp, exp, "--cluster", "farm"), "launch")
        _check_experiments_outcome(tmp, exp, call(status_main, [str(exp), *_paths(tmp)]), "status")


YAMLISH = st.text(alphabet=st.sampled_from(list("abAB01-_:[]{},&*!|>'\"#%@`$() \n\t.?~=\\") + ["\x00", "é"]),
                  max_size=120)


@FUZZ
@given(text=st.one_of(YAMLISH, st.text(max_size=80), st.just(GOOD).map(lambda g: g[: len(g) // 2])))
def test_fuzz_experiments_text(text: str, corpus) -> None:
    """Arbitrary text as experiments.yaml (and a valid file cut in half): accepted or one error line."""
    with tempfile.TemporaryDirectory() as d, corpus.case("experiments.yaml fuzz"):
        tmp = Path(d)
        exp = tmp / "experiments.yaml"
        exp.write_text(text, encoding="utf-8", errors="surrogatepass")
        _check_experiments_outcome(tmp, exp, _launch(tmp, exp, "--debug"), "launch")


# -- training config: hand-written and fuzzing --------------------------------------------------------
TRAIN_CASES = [
    ("syntax", "epoch: 2\nloss_weights: [1, 0\n", "invalid YAML"),
    ("top-list", "- epoch\n", "expected a mapping"),
    ("unknown", "epochs: 2\n", "unknown key"),
    ("type", "epoch: two\n", "expected int"),
    ("negative", "batch_size: -4\n", "batch_size: must be >= 1"),
    ("huge-seed", "seed: 18446744073709551616\n", "seed: must be <="),
    ("huge-workers", "num_workers: 100000\n", "num_workers: must be <="),
    ("inf", "lr_rate: .inf\n", "finite"),
    ("dup-key", "epoch: 1\nepoch: 2\n", "epoch: key given twice"),
    ("dup-nested", "data:\n  root: a\n  root: b\n", "data.root: key given twice"),
    ("complex-key", "? [a, b]\n: 1\n", "invalid YAML"),
    ("bomb", BOMB.replace("l", "x_") + "epoch: 1\n", "alias bomb"),
    ("deep", "data: " + "{a: " * 2000 + "1" + "}" * 2000 + "\n", "nested too deeply"),
    ("python-tag", "name: !!python/object/apply:os.system ['true']\n", "invalid YAML"),
    ("name-dotdot", "name: ../../../x\n", "not a usable run name"),
    ("name-abs", "name: /tmp/x\n", "not a usable run name"),
    ("name-shell", "name: x$(touch /tmp/pwned)\n", "not a usable run name"),
    ("data-type", "data: {root: [1]}\n", "expected str"),
    ("data-unknown", "data: {fer: x}\n", "unknown key"),
    ("weights-mapping", "loss_weights: {beauty: 1}\n", "unknown task"),
]


@pytest.mark.parametrize("text, needle", [c[1:] for c in TRAIN_CASES], ids=[c[0] for c in TRAIN_CASES])
def test_train_config_mistakes_are_one_line(text: str, needle: str, tmp_path: Path, corpus) -> None:
    cfg = tmp_path / "run.yaml"
    cfg.write_text(text)
    for argv in (["--print-config"], ["--results", str(tmp_path / "results")],
                 ["--run-dir", str(tmp_path / "results" / "run")]):
        with corpus.case("training config"):
            assert_one_line_error(call(train_main, ["--config", str(cfg), *argv]), "train", needle)
            _nothing_written(tmp_path)


SET_CASES = [("epoch=", "must not be empty"), ("epoch=[1", "expected int"), ("data=3", "expected a mapping"),
             ("data.root.x=1", "data.root: expected str"), ("name=../x", "not a usable run name"),
             ("name=a b", "not a usable run name"), ("seed=-1", "seed: must be >= 0"), ("nokey", "expected key=value"),
             ("=3", "unknown key"), ("loss_weights=[nan,1,1,1]", "finite"), ("image_size=1e9", "expected int")]


@pytest.mark.parametrize("override, needle", SET_CASES)
def test_set_mistakes_are_one_line(override: str, needle: str, tmp_path: Path, corpus) -> None:
    with corpus.case("training --set"):
        res = call(train_main, ["--results", str(tmp_path / "results"), f"--set={override}"])
        assert_one_line_error(res, "train", needle)
        _nothing_written(tmp_path)
    with corpus.case("training --set"):   # the same override for a whole grid
        exp = tmp_path / "experiments.yaml"
        exp.write_text(GOOD)
        assert_one_line_error(_launch(tmp_path, exp, "--debug", f"--set={override}"), "launch", needle)
        _nothing_written(tmp_path)


TRAIN_KEYS = ["name", "dataset", "loss_weights", "age_loss_type", "backbone_weights", "image_size", "batch_size",
              "epoch", "lr_rate", "seed", "steps_per_epoch", "num_workers", "device", "momentum", "init_checkpoint",
              "load_IMDB_WIKI_pretrained_model", "data", "data.root", "data.chalearn_layout",
              "data.synthetic_train_size", "data.imdb_wiki_val_fraction", "unknown", "data.unknown"]


def _check_train_outcome(tmp: Path, argv: list[str]) -> None:
    res = call(train_main, ["--print-config", *argv])
    if res.code != 0:
        assert_one_line_error(res, "train")
        again = call(train_main, ["--results", str(tmp / "results"), *argv])   # would it write anything?
        assert_one_line_error(again, "train")
        _nothing_written(tmp)
        return
    assert "Traceback" not in res.out + res.err
    cfg = load_train_config(Path(argv[1]) if argv[0] == "--config" else None,
                            [a.split("=", 1)[1] for a in argv if a.startswith("--set=")])
    assert_inside(default_run_dir(tmp / "results", cfg), tmp / "results")


@FUZZ
@given(key=st.sampled_from(TRAIN_KEYS), value=NASTY_VALUES)
def test_fuzz_train_config_file(key: str, value, corpus) -> None:
    with tempfile.TemporaryDirectory() as d, corpus.case("training config fuzz"):
        tmp = Path(d)
        doc: dict = {"dataset": "synthetic", "epoch": 1}
        head, _, tail = key.partition(".")
        if tail:
            doc["data"] = {tail: value}
        else:
            doc[head] = value
        cfg = tmp / "run.yaml"
        cfg.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
        _check_train_outcome(tmp, ["--config", str(cfg)])


@FUZZ
@given(key=st.one_of(st.sampled_from(TRAIN_KEYS), st.text(max_size=10)),
       value=st.one_of(st.text(max_size=30), st.sampled_from(["[1,0,0,0]", "{a: 1}", "1e999", "-5", "null", "~",
                                                               "!!python/name:os.system", "&a [*a]", "[", "'"])))
def test_fuzz_set_overrides(key: str, value: str, corpus) -> None:
    with tempfile.TemporaryDirectory() as d, corpus.case("training --set fuzz"):
        _check_train_outcome(Path(d), [f"--set={key}={value}"])

"""The cluster's limits (mtl_cluster/launch/limits.py) and the pending reasons (reasons.py) from fixed scheduler
text, no Slurm needed: what is parsed, what is refused, what is reshaped. The same paths on the real local
Slurm are in tests/test_queue_slurm.py."""
from __future__ import annotations

from pathlib import Path

from mtl_cluster.launch import limits
from mtl_cluster.launch.clusters import ClusterProfile
from mtl_cluster.launch.reasons import explain, start_text

CONFIG = """Configuration data as of 2026-12-06T09:30:00
AccountingStorageEnforce = associations,limits,qos
MaxArraySize            = 5
MaxJobCount             = 10000
"""
PARTITIONS = ("PartitionName=gpu AllowGroups=ALL Default=YES MaxTime=2-00:00:00 State=UP "
              "TRES=cpu=64,mem=500G,node=2,billing=64,gres/gpu=8\n"
              "PartitionName=cpu MaxTime=01:00:00 State=DRAIN TRES=cpu=64,mem=500G,node=2\n")
ASSOC = "proj||normal,long|||||\n"
QOS = "normal|4|gres/gpu=2||\nlong|||7-00:00:00|\n"


def _limits() -> limits.Limits:
    return limits.Limits(config=limits.parse_config(CONFIG), partitions=limits.parse_partitions(PARTITIONS),
                         assoc=limits.parse_table(ASSOC, limits.ASSOC_FIELDS),
                         qos={q["Name"]: q for q in limits.parse_table(QOS, limits.QOS_FIELDS)},
                         queued={"normal": 1, "long": 5})


def _prof(**kw) -> ClusterProfile:
    return ClusterProfile(**{"name": "c", "partition": "gpu", "gres": "gpu:1", "timeout_min": 60, **kw})


def test_slurm_times_in_minutes() -> None:
    assert [limits.minutes(t) for t in ("UNLIMITED", "30", "05:30", "01:00:00", "2-00:00:00", "1-12", "x")] == \
        [None, 30, 6, 60, 2880, 2160, None]


def test_what_is_read() -> None:
    lim = _limits()
    assert lim.config_int("MaxArraySize") == 5 and lim.enforced
    assert lim.partitions is not None and lim.partitions["gpu"].gres == {"gpu"}
    assert lim.partitions["gpu"].max_time_min == 2880
    assert "scontrol show partition gpu: MaxTime=2-00:00:00 State=UP GRES=gpu" in lim.lines("gpu")


def test_reshaped_array_size_qos_gpus_and_max_submit() -> None:
    """MaxArraySize 5 -> arrays of 4; QOS normal's MaxTRESPerUser gres/gpu=2 -> 2 one-GPU tasks at once;
    MaxSubmitJobsPerUser 4 with 1 job queued -> 3 runs now. One line each."""
    shape = limits.check({"clusters.c": _prof()}, _limits(), runs=10, array_parallelism=None)
    assert shape.refusals == []
    assert (shape.max_array_size, shape.array_parallelism, shape.submit_at_most) == (4, 2, 3)
    assert shape.changes == [
        "array parallelism throttled to 2: QOS normal's MaxTRESPerUser gres/gpu=2 (sacctmgr show qos) runs 2 "
        "task(s) of 1 GPU(s) at once",
        "3 of 10 runs submitted now: QOS normal's MaxSubmitJobsPerUser (sacctmgr show qos) is 4 and 1 of your "
        "jobs are queued; launch again as they end for the rest",
        "arrays split at 4 runs: MaxArraySize is 5 (scontrol show config; clusters.c.max_array_size is 1000)"]


def test_refused() -> None:
    lim = _limits()
    cases = {
        "clusters.c: timeout_min 3000 is above partition gpu's MaxTime 2-00:00:00 (2880 min, scontrol show "
        "partition gpu): the job would never start (PartitionTimeLimit); lower timeout_min to 2880 or less":
            _prof().__class__(name="c", partition="gpu", timeout_min=3000),
        "clusters.c: QOS 'gold' does not exist (sacctmgr show qos: long, normal)": _prof(qos="gold"),
        "clusters.c: account 'other' is not one of yours (sacctmgr show assoc: proj)": _prof(account="other"),
        "clusters.c: partition gpu has no GRES 'mps' (scontrol show partition gpu: TRES=cpu=64,mem=500G,node=2,"
        "billing=64,gres/gpu=8)": ClusterProfile(name="c", partition="gpu", gres="mps:1"),
        "clusters.c: partition cpu is State=DRAIN (scontrol show partition cpu): it takes no jobs":
            ClusterProfile(name="c", partition="cpu"),
    }
    for line, prof in cases.items():
        assert line in limits.check({"clusters.c": prof}, lim, 1, None).refusals, line
    res = limits.check({"x.resources": _prof(partition="nope")}, lim, 1, None).refusals
    assert res[0].startswith("x.resources: partition 'nope' does not exist (scontrol show partition: cpu, gpu)")


def test_nothing_checked_where_nothing_was_read() -> None:
    prof = ClusterProfile(name="c", partition="gpu", qos="gold", timeout_min=99999)
    shape = limits.check({"clusters.c": prof}, limits.Limits(), 10**6, None)
    assert shape == limits.Shape()


def test_held_back_runs_take_their_fine_tunes_with_them() -> None:
    from mtl_cluster.launch.grid import RunSpec
    from mtl_cluster.launch.plan import PlanRow
    from mtl_cluster.launch.status import RunStatus
    from mtl_cluster.states import Action, Kind

    def row(name: str, parent=None) -> PlanRow:
        spec = RunSpec.__new__(RunSpec)
        object.__setattr__(spec, "run_dir", Path(name))
        r = PlanRow(RunStatus.__new__(RunStatus), Action(Kind.SUBMIT))
        object.__setattr__(r.status, "spec", spec)
        r.after_runs = [parent.spec] if parent else []
        return r

    a, b = row("a"), row("b")
    c, d = row("c", parent=b), row("d", parent=a)   # c: the third run, held back; d: its parent a is kept,
    #                                                  but the quota of 2 is spent
    assert limits.keep_under([a, b, c, d], 2, "later") == 2
    assert [str(r.action) for r in (a, b, c, d)] == ["submit", "submit", "skip: later", "skip: later"]


def test_reasons_in_plain_words() -> None:
    assert explain("ReqNodeNotAvail, UnavailableNodes:n1").code == "ReqNodeNotAvail"
    assert explain("(None)").words.startswith("just queued")
    assert explain("QOSMaxGRESPerUser").words == "your QOS's cap on GPUs per user is reached by your running jobs"
    assert explain("SomethingNew").words == "Slurm says SomethingNew"      # the rest as they are
    assert start_text("N/A") is None and start_text("2026-12-06T10:42:00") in ("10:42", "12-06 10:42")

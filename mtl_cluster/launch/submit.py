"""Put a planned grid on Slurm (or run it here): job arrays with dependencies, and the job itself.

The only module that imports submitit. A job runs the trainer in a child process
(``python -m mtl_cluster.train``) so the trainer's own SIGUSR2/SIGTERM handling stays the single
checkpoint mechanism: on the time-limit signal (or preemption) ``RunJob.checkpoint`` forwards SIGUSR2
to the child, waits for it to save at a step boundary and exit 75, and hands submitit the same job
again, which requeues it (Slurm keeps the job id) at most ``max_requeues`` times for time limits;
preemptions do not count. A SIGKILLed trainer leaves status.json at ``running``: mtl-status shows it
as died and the next launch resumes it from its checkpoint.
"""
from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Hashable, Iterator, Mapping, Sequence, TypedDict

import submitit
import yaml
from submitit.core.utils import DelayedSubmission

from ..errors import EXIT_INTERRUPTED, WORKER_DONE, ConfigError, MtlError
from ..rundir import Summary, read_json
from ..signals import spawn_shielded
from . import slurmq
from .clusters import ClusterProfile, chunks, job_name, sbatch_parameters, with_resources
from .grid import RunSpec
from .journal import IntentRun, Journal
from .plan import PlanRow
from .status import submits

GRACE_S = 120.0     # how long checkpoint() waits for the trainer to save and exit


class ArrayEvent(TypedDict):
    """What ``submit`` tells its ``on_event`` after each sbatch call (event ``array``)."""

    n: int                    # this array's number, 1-based
    of: int                   # arrays in the launch
    job_id: str
    size: int                 # runs in the array
    dependency: str | None    # its sbatch --dependency


class _RunEventBase(TypedDict):
    i: int                    # the run's number in the launch, 1-based
    n: int                    # runs in the launch
    row: PlanRow


class RunEvent(_RunEventBase, total=False):
    """What ``run_here`` tells its ``on_event``: ``run_start`` (i, n, row), ``run_end`` (and rc, last, seconds)."""

    rc: int                   # the trainer's exit code (-1: not run, its parent failed)
    last: str                 # its last stderr line
    seconds: float


ArrayProgress = Callable[[str, ArrayEvent], None]
RunProgress = Callable[[str, RunEvent], None]


# -- the job ----------------------------------------------------------------------------------------
def child_env() -> dict[str, str]:
    """The trainer's environment: torch threads = the CPUs SLURM gave the task, unless the user chose.

    Without it torch sizes its pool by the node's cores and oversubscribes a shared node.
    """
    env = dict(os.environ)
    cpus = env.get("SLURM_CPUS_PER_TASK")
    if cpus and "OMP_NUM_THREADS" not in env:
        env["OMP_NUM_THREADS"] = cpus
    return env


@contextlib.contextmanager
def config_file(config: Mapping[str, object]) -> Iterator[str]:
    """The run's config as a temporary YAML file for the trainer's ``--config``, removed afterwards.

    Left 0600 (mkstemp's mode) on purpose: only the trainer this job starts, as the same user, reads it; what
    others read is the run folder's config.yaml, which the trainer writes with the umask's mode (fsio).
    """
    fd, path = tempfile.mkstemp(prefix="mtl-run-", suffix=".yaml")
    try:
        with os.fdopen(fd, "w") as f:
            yaml.safe_dump(config, f, sort_keys=False)
        yield path
    finally:
        os.unlink(path)


class RunJob:
    """Train one run folder in a child process; requeue-aware. Picklable: holds only plain data.

    Checkpointable the way submitit asks (a ``checkpoint`` method, which it may answer with None for "do not
    requeue"); not derived from ``submitit.helpers.Checkpointable``, whose annotation leaves no room for None."""

    def __init__(self, config: Mapping[str, object], run_dir: str):
        self.config = config
        self.run_dir = run_dir

    def __getstate__(self) -> dict[str, object]:
        return {"config": self.config, "run_dir": self.run_dir}

    def command(self, config_file: str) -> list[str]:
        return [sys.executable, "-m", "mtl_cluster.train", "--config", config_file, "--run-dir", self.run_dir]

    def train(self, echo: bool = True) -> tuple[int, str]:
        """Run the trainer to its exit; returns (exit code, last stderr line). ``echo``: pass its output on."""
        self._rc: int | None = None
        self._last = ""
        done = threading.Event()
        with config_file(self.config) as cfg_file:
            proc = spawn_shielded(self.command(cfg_file), stderr=subprocess.PIPE, text=True, bufsize=1,
                                  stdout=None if echo else subprocess.DEVNULL, env=child_env())
            self._proc = proc

            def watch() -> None:  # reads stderr and reaps the child, so the main thread only sleeps
                assert proc.stderr is not None
                for line in proc.stderr:
                    if echo:
                        sys.stderr.write(line)
                        sys.stderr.flush()
                    if line.strip():
                        self._last = line.strip()
                self._rc = proc.wait()
                done.set()

            threading.Thread(target=watch, daemon=True).start()
            while not done.wait(0.5):   # interruptible: submitit's USR2 handler runs here
                pass
            return int(self._rc if self._rc is not None else 1), self._last

    def __call__(self) -> Summary:
        rc, last = self.train()
        if rc == 0:
            return read_json(Path(self.run_dir) / "summary.json")
        if rc == EXIT_INTERRUPTED:
            time.sleep(2)  # a USR2 that reached both processes: let our handler run (it requeues and exits)
            # SIGTERM from Slurm (scancel, scontrol requeue, preemption) reached the trainer: Slurm itself
            # requeues or ends the job. Requeueing here would resurrect a scancel'led job, so just stop
            # without a result; the run folder says "interrupted" and the next launch resumes it.
            raise SystemExit(EXIT_INTERRUPTED)
        raise RuntimeError(f"trainer exited with code {rc}: {last or '(no stderr)'}")

    def checkpoint(self, *args: object, **kwargs: object) -> DelayedSubmission | None:
        """Time limit or preemption (USR2): let the trainer save at a step boundary, then requeue. Not when
        the trainer ended otherwise than interrupted (e.g. exit 1, stalled: its checkpoint did not advance
        over consecutive attempts, train/guard.py): None tells submitit not to requeue."""
        proc = getattr(self, "_proc", None)
        if proc is not None and getattr(self, "_rc", None) is None:
            try:
                proc.send_signal(signal.SIGUSR2)
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + GRACE_S
            while self._rc is None and time.monotonic() < deadline:
                time.sleep(0.2)
        if getattr(self, "_rc", None) not in (None, EXIT_INTERRUPTED):
            return None
        return DelayedSubmission(RunJob(self.config, self.run_dir))


# -- Slurm submission -------------------------------------------------------------------------------
@dataclass
class ArrayGroup:
    """Runs submitted with one sbatch call (one job array, or one job when alone), and their resources.

    ``corr``: the array this one follows task by task (``aftercorr``: task i starts when task i of
    ``corr`` completed), for fine-tune runs whose pretraining runs form an array in the same order.
    """

    rows: list[PlanRow]
    prof: ClusterProfile
    corr: ArrayGroup | None = None
    dependency: str | None = None
    job_id: str | None = None

    @property
    def wave(self) -> int:
        return max(r.wave for r in self.rows)


def _profile(prof: ClusterProfile, row: PlanRow) -> ClusterProfile:
    return with_resources(prof, row.spec.resources, f"{row.spec.name}.resources") if row.spec.resources else prof


def _by(rows: Sequence[PlanRow], key: Callable[[PlanRow], Hashable]) -> list[list[PlanRow]]:
    """Rows grouped by ``key(row)``, groups and rows in plan order."""
    out: dict[Hashable, list[PlanRow]] = {}
    for r in rows:
        out.setdefault(key(r), []).append(r)
    return list(out.values())


def _groups(rows: Sequence[PlanRow], prof: ClusterProfile) -> list[ArrayGroup]:
    """The arrays of a launch, parents before the arrays that wait for them.

    Every experiment that others fine-tune from gets arrays of its own (one task per grid point); an
    experiment whose runs fine-tune from such an array, point for point, follows it with ``aftercorr``,
    so the number of sbatch calls grows with the experiments, not with the seeds. Other runs share one
    array per wave, dependency set and resource profile. Arrays are split at the cluster's size limit
    (a follower split the same way as the array it follows).
    """
    todo = [r for r in rows if submits(r.action)]
    parents = {s.run_dir for r in todo for s in r.after_runs}

    def resources(r: PlanRow) -> str:
        return json.dumps(r.spec.resources, sort_keys=True)

    arrays: dict[tuple[Path, ...], list[ArrayGroup]] = {}   # the run folders of a parent array -> its chunks
    out: list[ArrayGroup] = []
    placed: set[Path] = set()
    for wave in sorted({r.wave for r in todo}):
        in_wave = [r for r in todo if r.wave == wave]
        for members in _by([r for r in in_wave if len(r.after_runs) == 1 and not r.after],
                           lambda r: (r.spec.name, r.after_runs[0].name, resources(r))):
            key = tuple(r.after_runs[0].run_dir for r in members)
            if key in arrays and len(members) > 1:
                group_prof = _profile(prof, members[0])
                for part, lead in zip(chunks(len(members), len(arrays[key][0].rows)), arrays[key]):
                    out.append(ArrayGroup([members[i] for i in part], group_prof, corr=lead))
                placed.update(r.spec.run_dir for r in members)
        for members in _by([r for r in in_wave if r.spec.run_dir in parents and r.spec.run_dir not in placed
                            and not r.after_runs],
                           lambda r: (r.spec.name, resources(r), tuple(sorted(set(r.after))))):
            group_prof = _profile(prof, members[0])
            arrays[tuple(r.spec.run_dir for r in members)] = parts = [
                ArrayGroup([members[i] for i in part], group_prof)
                for part in chunks(len(members), group_prof.max_array_size)]
            out += parts
            placed.update(r.spec.run_dir for r in members)
    loose = [r for r in todo if r.spec.run_dir not in placed]
    for wave in sorted({r.wave for r in loose}):
        for members in _by([r for r in loose if r.wave == wave],
                           lambda r: (resources(r), tuple(sorted(set(r.after))),
                                      tuple(str(s.run_dir) for s in r.after_runs))):
            group_prof = _profile(prof, members[0])
            out += [ArrayGroup([members[i] for i in part], group_prof)
                    for part in chunks(len(members), group_prof.max_array_size)]
    return sorted(out, key=lambda g: (g.wave, g.rows[0].spec.run_dir in parents))   # big shared array first


def _command(prof: ClusterProfile, folder: Path) -> str:
    """The job's command line, as submitit writes it: ``python:`` of the profile, else this interpreter."""
    python = prof.python or shlex.quote(sys.executable)
    return " ".join([python, "-u -m submitit.core._submit", shlex.quote(str(folder))])


def _dependency(group: ArrayGroup, job_of: dict[Path, str], placeholder: bool = False) -> str | None:
    if group.corr is not None:
        lead = group.corr.job_id or (f"<array of {group.corr.rows[0].spec.name}>" if placeholder else "")
        return f"aftercorr:{lead}" if lead else None
    ids: list[str] = []
    for r in group.rows:
        ids += r.after
        for s in r.after_runs:
            ids.append(job_of.get(s.run_dir) or (f"<job of {s.label}>" if placeholder else ""))
    ids = sorted({i for i in ids if i})
    return "afterok:" + ":".join(ids) if ids else None


def _job_config(spec: RunSpec) -> dict[str, object]:
    return spec.config.to_dict()


def _job_name(study: str, group: ArrayGroup) -> str:
    return job_name(study, [r.spec.name for r in group.rows])


def _parameters(group: ArrayGroup, study: str, dep: str | None, array_parallelism: int | None,
                comment: str) -> dict[str, Any]:
    """sbatch parameters of one array: the profile's, plus the journal's comment and a hold that the
    launch lifts once submitit's pickles are in place (a launch killed before that leaves a held job
    that the next reconcile completes, never one that starts without its pickle)."""
    params = sbatch_parameters(group.prof, _job_name(study, group), dep, array_parallelism)
    params["comment"] = comment
    params["additional_parameters"] = {**params.get("additional_parameters", {}), "hold": True}
    return params


def sbatch_scripts(rows: Sequence[PlanRow], prof: ClusterProfile, logs_dir: Path,
                   array_parallelism: int | None = None, study: str = "study") -> list[tuple[ArrayGroup, str]]:
    """The sbatch script of every array this launch would submit (for --dry-run), exactly as submitted."""
    from submitit.slurm.slurm import _make_sbatch_string
    out = []
    folder = Path(logs_dir).absolute() / prof.name / "%j"
    for n, group in enumerate(_groups(rows, prof), 1):
        dep = _dependency(group, {}, placeholder=True)
        params = _parameters(group, study, dep, array_parallelism, f"mtl-launch:<token>:{n}")
        n = len(group.rows)
        out.append((group, _make_sbatch_string(command=_command(group.prof, folder), folder=folder,
                                               map_count=n if n > 1 else None, **params)))
    return out


def submit(rows: Sequence[PlanRow], prof: ClusterProfile, logs_dir: Path, journal: Journal, *,
           array_parallelism: int | None = None, on_event: ArrayProgress | None = None, study: str = "study"
           ) -> list[ArrayGroup]:
    """sbatch every run whose action submits: one array per wave and dependency set, parents first.

    Each sbatch is written into ``journal`` before (the runs) and after (the job id, the release).
    """
    emit = on_event or (lambda _k, _i: None)
    folder = Path(logs_dir).absolute() / prof.name / "%j"
    groups = _groups(rows, prof)
    job_of: dict[Path, str] = {}
    for n, group in enumerate(groups, 1):
        dep = _dependency(group, job_of)
        ex = submitit.SlurmExecutor(folder=folder, max_num_timeout=group.prof.max_requeues,
                                    python=group.prof.python)
        tag = journal.intent(n, len(groups), [_intent_run(r.spec) for r in group.rows], group.prof.timeout_min,
                             group.prof.max_requeues)
        ex.update_parameters(**_parameters(group, study, dep, array_parallelism, tag))
        try:
            with ex.batch():
                jobs = [ex.submit(RunJob(_job_config(r.spec), str(r.spec.run_dir)))
                        for r in group.rows]
        except Exception as exc:  # sbatch said no: one line, what was submitted stays recorded
            msg = str(exc).strip().splitlines()
            raise MtlError(f"sbatch failed for array {n}/{len(groups)}: {msg[-1] if msg else exc}") from exc
        for r, job in zip(group.rows, jobs):
            r.job_id = str(job.job_id)
            r.log = str(job.paths.stdout)
            job_of[r.spec.run_dir] = r.job_id
        group.dependency = dep
        group.job_id = str(jobs[0].job_id).split("_")[0]
        journal.submitted(n, group.job_id)
        problem = slurmq.release([group.job_id])
        if problem:
            raise MtlError(f"array {n}/{len(groups)} (job {group.job_id}) is queued held and "
                           f"scontrol release failed: {problem}")
        journal.released(n)
        emit("array", {"n": n, "of": len(groups), "job_id": group.job_id, "size": len(group.rows),
                       "dependency": dep})
    return groups


def _intent_run(spec: RunSpec) -> IntentRun:
    """What the journal keeps of a run: enough to record it, and to rebuild its job's pickle."""
    return {"name": spec.name, "label": spec.label, "signature": spec.signature, "run_dir": str(spec.run_dir),
            "config": _job_config(spec)}


def adopt(logs: str, job_id: str, runs: Sequence[IntentRun], timeout_min: int, max_requeues: int) -> list[str]:
    """A queued job of a launch that died (``journal.reconcile``): write the pickle of every task that
    lacks one, as submitit would have (a kill between sbatch and submitit moving its pickles leaves none),
    and return each run's log path."""
    from submitit.core.utils import JobPaths
    out = []
    for i, run in enumerate(runs):
        paths = JobPaths(Path(logs), job_id=job_id if len(runs) == 1 else f"{job_id}_{i}", task_id=0)
        if not paths.submitted_pickle.exists():
            paths.submitted_pickle.parent.mkdir(parents=True, exist_ok=True)
            delayed = DelayedSubmission(RunJob(run["config"], run["run_dir"]))
            delayed.set_timeout(timeout_min, max_requeues)
            tmp = paths.submitted_pickle.with_name(paths.submitted_pickle.name + ".tmp")
            delayed.dump(tmp)
            os.replace(tmp, paths.submitted_pickle)
        out.append(str(paths.stdout))
    return out


class LocalWorker:
    """One ``mtl-train --worker`` child that trains the local runs one after the other, so torch loads once
    per launch instead of once per run (and the synthetic images of a seed are drawn once). Each run is
    trained as a fresh process would train it (tests/test_launch_local.py compares the bytes); the child
    stays a separate process, so the trainer's signal handling is the one it has under Slurm."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self._env = env or {}
        self._proc: subprocess.Popen | None = None
        self._lines: list[str] = []
        self._cond = threading.Condition()

    def _start(self) -> subprocess.Popen:
        proc = spawn_shielded([sys.executable, "-m", "mtl_cluster.train", "--worker"], stdin=subprocess.PIPE,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, bufsize=1,
                              env={**child_env(), **self._env})

        def read() -> None:
            assert proc.stderr is not None
            for line in proc.stderr:
                with self._cond:
                    self._lines.append(line)
                    self._cond.notify()
            proc.wait()
            with self._cond:
                self._lines.append("")   # end of stream
                self._cond.notify()

        threading.Thread(target=read, daemon=True).start()
        return proc

    def train(self, config: Mapping[str, object], run_dir: str) -> tuple[int, str]:
        """Train one run in the worker; returns (exit code, last stderr line), as ``RunJob.train`` does."""
        if self._proc is None or self._proc.poll() is not None:
            self._proc, self._lines = self._start(), []
        last = ""
        with config_file(config) as cfg_file:
            assert self._proc.stdin is not None
            try:
                self._proc.stdin.write(json.dumps({"config": cfg_file, "run_dir": run_dir}) + "\n")
                self._proc.stdin.flush()
            except BrokenPipeError:
                pass   # it died: the end of stream below says so
            while True:
                with self._cond:
                    while not self._lines:
                        self._cond.wait(0.5)   # a timeout keeps Ctrl-C deliverable in this thread
                    line = self._lines.pop(0)
                if not line:   # the worker exited without answering
                    rc = self._proc.wait()
                    self._proc = None
                    return (rc if rc != 0 else 1), last
                if line.startswith(WORKER_DONE):
                    return int(json.loads(line[len(WORKER_DONE):])["rc"]), last
                if line.strip():
                    last = line.strip()

    def close(self) -> None:
        """End the worker: its stdin closes, it finishes its loop and exits."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            assert proc.stdin is not None
            try:
                proc.stdin.close()
            except BrokenPipeError:
                pass
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def usable_cores() -> int:
    """The CPUs this process may run on (its affinity mask where the OS has one, as under Slurm or taskset)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:   # macOS
        return os.cpu_count() or 1


def worker_threads(workers: int, asked: str | None, cores: int) -> int | None:
    """Torch threads for each of ``workers`` local workers; None with one worker (the user's or torch's choice).

    One thread each, or the user's ``OMP_NUM_THREADS`` where the cores allow it, never more than the cores
    divided among the workers. Why: the user's value applied to every worker oversubscribed the cores (two
    workers of two threads on two cores trained the demo 2.6x slower, BENCHMARKS.md), and small batches use
    one core each far better than two cores together.
    """
    if workers <= 1:
        return None
    try:
        wanted = max(1, int(asked)) if asked else 1
    except ValueError:   # not a number: torch would ignore it too
        wanted = 1
    return min(wanted, max(1, cores // workers))


def run_here(rows: Sequence[PlanRow], on_event: RunProgress | None = None,
             workers: int = 1) -> dict[Path, tuple[int, str]]:
    """Run the submitting rows on this machine (--debug, cluster ``local``) in ``workers`` worker processes.

    Runs start in plan order; a fine-tune waits for its parent. With more than one worker each trains with
    ``worker_threads`` threads (one, unless the user's OMP_NUM_THREADS and the cores allow more). A run's
    numbers do not depend on which worker trains it or after which runs (tests/test_launch_local.py compares
    the bytes), but can on the thread count: CPU kernels sum in another order (status.json ``perf.cpu_threads``).
    """
    emit = on_event or (lambda _k, _i: None)
    todo = list(enumerate((r for r in rows if submits(r.action)), 1))
    mine = {r.spec.run_dir for _, r in todo}
    results: dict[Path, tuple[int, str]] = {}
    cond = threading.Condition()
    stop = threading.Event()
    errors: list[BaseException] = []
    per_worker = worker_threads(workers, os.environ.get("OMP_NUM_THREADS"), usable_cores())
    env = {"OMP_NUM_THREADS": str(per_worker)} if per_worker is not None else {}

    def ready(r: PlanRow) -> bool:
        return all(s.run_dir in results or s.run_dir not in mine for s in r.after_runs)

    def take() -> tuple[int, PlanRow] | None:
        with cond:
            while not stop.is_set():
                pick = next((item for item in todo if ready(item[1])), None)
                if pick is not None:
                    todo.remove(pick)
                    return pick
                if not todo:
                    return None
                cond.wait(0.5)
        return None

    def finish(i: int, r: PlanRow, rc: int, last: str, t0: float) -> None:
        with cond:
            results[r.spec.run_dir] = (rc, last)
            cond.notify_all()
        emit("run_end", {"i": i, "n": len(mine), "row": r, "rc": rc, "last": last,
                         "seconds": time.monotonic() - t0})

    def work() -> None:
        worker = LocalWorker(env)
        try:
            while (item := take()) is not None:
                i, r = item
                failed = [s for s in r.after_runs if results.get(s.run_dir, (0, ""))[0] != 0]
                if failed:
                    finish(i, r, -1, f"not run: {failed[0].label} did not complete", time.monotonic())
                    continue
                emit("run_start", {"i": i, "n": len(mine), "row": r})
                t0 = time.monotonic()
                rc, last = worker.train(_job_config(r.spec), str(r.spec.run_dir))
                finish(i, r, rc, last, t0)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread, which re-raises it
            errors.append(exc)
            stop.set()
        finally:
            worker.close()

    threads = [threading.Thread(target=work, daemon=True) for _ in range(max(1, min(workers, len(todo))))]
    for t in threads:
        t.start()
    try:
        for t in threads:
            while t.is_alive():
                t.join(0.5)   # a timeout keeps Ctrl-C deliverable in the main thread
    except BaseException:
        stop.set()            # no new run starts; the workers got the terminal's SIGINT themselves
        for t in threads:
            t.join(60)
        raise
    if errors:
        raise errors[0]
    return results


def check_cluster_choice(prof: ClusterProfile) -> None:
    """A Slurm profile needs srun/sbatch on this host (--debug alone uses the local profile)."""
    if not prof.is_slurm:
        return
    if submitit.SlurmExecutor.affinity() < 0:
        raise ConfigError(f"--cluster {prof.name}: srun is not on PATH here; submit from a login node "
                          f"of that cluster (or use --debug / --cluster local)")

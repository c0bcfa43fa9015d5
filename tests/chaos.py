"""The chaos soak: a whole small grid on the REAL local Slurm while random faults from a menu hit it, relaunched
as a user would until it is complete, then checked for anything lost or doubled.

The grid (12 runs, two seeds): a gender+age pretraining, four-task, smile and age rows from scratch, and
four-task and smile rows fine-tuned from the pretraining (``aftercorr`` arrays of two runs each). Faults are
drawn with ``random.Random(seed)``:

- at a launch: sbatch failing on its k-th call (a socket time-out), sbatch queueing the job but answering
  with a time-out, mtl-launch SIGKILLed right after its k-th sbatch, a second mtl-launch racing the first;
- while jobs run: scancel of a task, ``scontrol requeue``, SIGKILL of a trainer, preemption by an urgent
  job, slurmd restarted, slurmctld restarted, the newest checkpoint truncated, and a hand-started
  ``mtl-train`` on a folder a job is training (it must be refused).

Between rounds it relaunches (``mtl-launch`` again; ``--retry-failed`` when a run failed) until every run
is complete and a launch has nothing to submit. Then: every run complete; metrics.jsonl and summary.json
byte-identical to an undisturbed reference (the same grid trained here, one run at a time, one thread);
no run folder held by two trainers at once (``.lock.log``, runlock.holds_overlapped); no job of the soak
left in squeue; no orphan temporary file; every job Slurm ran for the soak named in a jobs/ record.

``tests/test_chaos.py`` runs it at CI size; ``scripts/chaos.sh --seed N --minutes M`` runs longer ones.
Run as a script (``python tests/chaos.py --seed 3 --minutes 10``) it prints the tally and exits non-zero on a
failed check.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from mtl_cluster import runlock
from mtl_cluster.collect.cost import attempt_costs
from mtl_cluster.launch.ledger import read_records
from mtl_cluster.rundir import RunDir, read_jsonl

REPO = Path(__file__).resolve().parents[1]

URGENT = "chaos-urgent"                   # the preempting job's name
STUCK = ("DependencyNeverSatisfied", "JobHeldUser", "JobHeldAdmin")   # pending reasons that never clear alone
STATE_DIR = Path(os.environ.get("MTL_SLURM_STATE", "/var/tmp/mtl-slurm"))
YAML = """\
defaults:
  dataset: synthetic
  image_size: 64
  batch_size: 8
  device: cpu
  epoch: 3
  steps_per_epoch: {steps}
  checkpoint_every_min: 0.05         # every 3 s: a kill loses little, and there is a checkpoint to damage
  data: {{synthetic_train_size: 64, synthetic_eval_size: 16}}
experiments:
  - name: AlexNet-Gender_Age
    id: pre
    loss_weights: [1, 0, 0, 1]
  - name: AlexNet-Gender_Smile_Emotion_Age
    loss_weights: [1, 1, 1, 1]
  - name: AlexNet-Smile
    loss_weights: [0, 1, 0, 0]
  - name: AlexNet-Age
    loss_weights: [0, 0, 0, 1]
  - name: AlexNet-Gender_Smile_Emotion_Age
    id: mtl-ft
    loss_weights: [1, 1, 1, 1]
    init_from: pre
    load_IMDB_WIKI_pretrained_model: true
  - name: AlexNet-Smile
    id: smile-ft
    loss_weights: [0, 1, 0, 0]
    init_from: pre
    load_IMDB_WIKI_pretrained_model: true
grid:
  seed: [0, 1]
clusters:
  here: {{executor: local}}
  chaos:
    executor: slurm
    partition: gpu
    gres: "gpu:1"
    cpus_per_task: 1
    mem_gb: 2
    timeout_min: 30
    max_requeues: 100
    max_array_size: 2                  # several arrays, so a launch can be cut between them
    setup: ["export OMP_NUM_THREADS=1"]
"""
# sbatch, counted: fails on call $FAIL_ON; on call $LIE_ON submits, then says it timed out; SIGKILLs its caller
# (mtl-launch) after call $KILL_AFTER.
SHIM = """\
#!/bin/bash
n=$(( $(cat "$SHIM_DIR/count" 2>/dev/null || echo 0) + 1 ))
echo $n > "$SHIM_DIR/count"
if [ "$n" = "${FAIL_ON:-}" ]; then
    echo "sbatch: error: Batch job submission failed: Socket timed out on send/recv operation" >&2
    exit 1
fi
out=$(/usr/bin/sbatch "$@"); rc=$?
if [ "$n" = "${LIE_ON:-}" ]; then
    echo "sbatch: error: Batch job submission failed: Socket timed out on send/recv operation" >&2
    exit 1
fi
echo "$out"
if [ "$n" = "${KILL_AFTER:-}" ]; then kill -9 $PPID; fi
exit $rc
"""
LAUNCH_FAULTS = ("sbatch fails", "sbatch times out after queueing", "mtl-launch SIGKILLed after an sbatch",
                 "a second mtl-launch races the first")
RUN_FAULTS = ("scancel", "scontrol requeue", "SIGKILL of a trainer", "preemption", "slurmd restart",
              "slurmctld restart", "checkpoint truncated", "hand-started mtl-train on a live folder")


@dataclass
class Tally:
    """What the soak did and found; ``problems`` empty means every check passed."""

    seed: int
    minutes: float
    runs: int = 0
    faults: Counter = field(default_factory=Counter)
    launches: int = 0
    relaunch_rounds: int = 0
    retry_failed: int = 0
    epochs_recomputed: float = 0.0
    runs_doubled: int = 0
    runs_lost: int = 0
    slurm_jobs: int = 0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(self.faults.items())) or "none"
        return [f"chaos soak, seed {self.seed}, {self.minutes:g} min of faults, {self.runs} runs, "
                f"{self.seconds:.0f} s in all: {sum(self.faults.values())} faults injected ({kinds})",
                f"  launches {self.launches} (relaunch rounds {self.relaunch_rounds}, --retry-failed "
                f"{self.retry_failed}); Slurm jobs {self.slurm_jobs}; epochs recomputed "
                f"{self.epochs_recomputed:.2f}; runs doubled {self.runs_doubled}; runs lost {self.runs_lost}",
                *(f"  PROBLEM: {p}" for p in self.problems)]


class Soak:
    """One soak in ``root`` (its own results/, jobs/, logs/); ``say`` gets a line per event."""

    def __init__(self, root: Path, seed: int, minutes: float, steps: int = 40,
                 say: Callable[[str], None] = lambda _line: None):
        self.root, self.rng, self.minutes, self.say = Path(root), random.Random(seed), minutes, say
        self.tally = Tally(seed=seed, minutes=minutes)
        self.study = f"chaos_{seed}_{os.getpid()}_{int(time.time()) % 100000}"   # job names mtl:<study>:...
        self.yaml = self.root / f"{self.study}.yaml"
        self.root.mkdir(parents=True, exist_ok=True)
        self.yaml.write_text(YAML.format(steps=steps))
        self.steps = steps
        self.python = sys.executable
        self.shim_dir = self.root / "shim"
        self.shim_dir.mkdir(exist_ok=True)
        (self.shim_dir / "sbatch").write_text(SHIM)
        (self.shim_dir / "sbatch").chmod(0o755)
        self.started = time.time()
        # Faults come in rounds of every kind in a shuffled order (a kind that does not apply now waits for its
        # turn), so that a short soak still meets each kind; targets and timing are drawn at random.
        self.launch_cycle: list[str] = []
        self.run_cycle: list[str] = []

    def _next(self, cycle: list[str], kinds: tuple[str, ...], menu: list[str] | tuple[str, ...]) -> str:
        """The first kind of the current round (of ``kinds``) that ``menu`` allows now; a new shuffled round
        when none is left."""
        if not any(k in menu for k in cycle):
            fresh = [k for k in kinds if k not in cycle]
            self.rng.shuffle(fresh)
            # the racing launch last: the sbatch faults fire only while there is something left to submit
            fresh.sort(key=lambda k: k == LAUNCH_FAULTS[3])
            cycle.extend(fresh)
        kind = next(k for k in cycle if k in menu)
        cycle.remove(kind)
        return kind

    # -- the grid ------------------------------------------------------------------------------------
    def dirs(self, base: Path | None = None) -> list[str]:
        base = base or self.root
        return ["--results", str(base / "results"), "--jobs-dir", str(base / "jobs"), "--logs-dir",
                str(base / "logs")]

    def run_dirs(self, base: Path | None = None) -> list[Path]:
        from mtl_cluster.launch.study import load_experiments
        from mtl_cluster.launch.grid import expand
        return [s.run_dir for s in expand(load_experiments(self.yaml), (base or self.root) / "results")]

    def states(self) -> dict[Path, str]:
        return {d: str(RunDir(d).read_status().get("state") or "new") for d in self.run_dirs()}

    def launch_cmd(self, *extra: str, base: Path | None = None, cluster: str = "chaos") -> list[str]:
        return [self.python, "-c", "from mtl_cluster.cli.launch import entry_launch; entry_launch()",
                str(self.yaml), "--cluster", cluster, *extra, *self.dirs(base)]

    def reference(self) -> subprocess.Popen:
        """The undisturbed grid, trained here one run at a time on one thread, in the background."""
        ref = self.root / "reference"
        ref.mkdir(exist_ok=True)
        return subprocess.Popen(self.launch_cmd(base=ref, cluster="here"), cwd=REPO, stdout=subprocess.DEVNULL,
                                stderr=open(ref / "launch.err", "w"), env={**os.environ, "OMP_NUM_THREADS": "1"})

    # -- Slurm ---------------------------------------------------------------------------------------
    def queue(self) -> list[dict[str, str]] | None:
        """The soak's jobs in squeue (one per array task), or None when squeue cannot answer now."""
        try:
            res = subprocess.run(["squeue", "-h", "-r", "-o", "%i|%T|%r|%j"], capture_output=True, text=True,
                                 timeout=20)
        except subprocess.TimeoutExpired:
            return None
        if res.returncode != 0:
            return None
        out = []
        for line in res.stdout.splitlines():
            parts = line.split("|")
            if len(parts) == 4 and parts[3].startswith(f"mtl:{self.study}"):
                out.append({"id": parts[0], "state": parts[1], "reason": parts[2]})
        return out

    def wait_for_controller(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.queue() is not None:
                return
            time.sleep(1)
        raise RuntimeError("slurmctld does not answer")

    def running(self) -> list[tuple[Path, dict]]:
        """Run folders a live trainer is training now (status.json running, a pid that exists)."""
        out = []
        for d in self.run_dirs():
            st = RunDir(d).read_status()
            if st.get("state") == "running" and st.get("pid") and runlock.pid_alive(int(st["pid"])):
                out.append((d, st))
        return out

    # -- launches ------------------------------------------------------------------------------------
    def launch(self, fault: str | None, retry_failed: bool) -> bool:
        """One mtl-launch (two when racing), with ``fault`` armed; whether the fault fired."""
        extra = ["--retry-failed"] if retry_failed else []
        env = {**os.environ, "PATH": f"{self.shim_dir}:{os.environ['PATH']}", "SHIM_DIR": str(self.shim_dir)}
        (self.shim_dir / "count").write_text("0")
        k = 1 if self.rng.random() < 0.5 else self.rng.randint(2, 3)   # a relaunch often has one array left
        if fault == "sbatch fails":
            env["FAIL_ON"] = str(k)
        elif fault == "sbatch times out after queueing":
            env["LIE_ON"] = str(k)
        elif fault == "mtl-launch SIGKILLed after an sbatch":
            env["KILL_AFTER"] = str(k)
        cmd = self.launch_cmd(*extra)
        procs = [subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for _ in range(2 if fault == "a second mtl-launch races the first" else 1)]
        self.tally.launches += len(procs)
        outs = [p.communicate(timeout=300) for p in procs]
        calls = int((self.shim_dir / "count").read_text().strip() or 0)
        fired = fault is not None and (fault == "a second mtl-launch races the first" or calls >= k)
        if fired:
            self.tally.faults[fault] += 1
        elif fault is not None:
            self.launch_cycle.insert(0, fault)     # fewer sbatch calls than its k: it waits for the next launch
        codes = [p.returncode for p in procs]
        self.event(f"launch{' + ' + fault + (f' (call {k})' if fault != LAUNCH_FAULTS[3] else '') if fired else ''}:"
                   f" exit {codes}, {calls} sbatch call(s)"
                   + "".join(f"; {e.strip().splitlines()[-1]}" for _, e in outs if e.strip()))
        for (_, err), rc in zip(outs, codes):
            if rc not in (0, -9, 1) or (rc != 0 and not fired):
                self.tally.problems.append(f"mtl-launch exited {rc} without an injected fault: {err.strip()[-300:]}")
        return fired

    # -- faults while jobs run -------------------------------------------------------------------
    def inject(self) -> None:
        """One fault from the menu, among those that apply right now."""
        live = self.running()
        queue = self.queue() or []
        running_jobs = [j for j in queue if j["state"] == "RUNNING"]
        with_ckpt = [d for d in self.run_dirs() if list((d / "checkpoints").glob("ckpt-*.pt"))
                     and RunDir(d).read_status().get("state") != "completed"]   # a finished run never reads its own
        menu = [f for f in RUN_FAULTS if self._applies(f, live, running_jobs, with_ckpt)]
        if not menu:
            return
        fault = self._next(self.run_cycle, RUN_FAULTS, menu)
        what = getattr(self, "_" + fault.split()[0].replace("-", "_").lower())(live, running_jobs, with_ckpt)
        if what:
            self.tally.faults[fault] += 1
            self.event(f"{fault}: {what}")
        else:
            self.run_cycle.insert(0, fault)        # it found nothing to hit this instant: its turn again

    @staticmethod
    def _applies(fault: str, live: list, running_jobs: list, with_ckpt: list) -> bool:
        if fault in ("SIGKILL of a trainer", "hand-started mtl-train on a live folder"):
            return bool(live)
        if fault in ("scancel", "scontrol requeue", "preemption"):
            return bool(running_jobs)
        if fault == "checkpoint truncated":
            return bool(with_ckpt)
        return True

    def _scancel(self, live, running_jobs, with_ckpt) -> str:
        job = self.rng.choice(running_jobs)["id"]
        subprocess.run(["scancel", job], capture_output=True, timeout=30)
        return f"job {job}"

    def _scontrol(self, live, running_jobs, with_ckpt) -> str:
        job = self.rng.choice(running_jobs)["id"]
        res = subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True, timeout=30)
        return f"job {job}" + (f" ({res.stderr.strip()})" if res.returncode else "")

    def _sigkill(self, live, running_jobs, with_ckpt) -> str:
        run, st = self.rng.choice(live)
        try:
            os.kill(int(st["pid"]), signal.SIGKILL)
        except ProcessLookupError:
            return ""
        return f"pid {st['pid']} ({run.parent.name}/{run.name})"

    def _preemption(self, live, running_jobs, with_ckpt) -> str:
        res = subprocess.run(["sbatch", "--parsable", "-p", "urgent", "--gres=gpu:2", "-c", "1", "--mem=100M",
                              "-J", URGENT, "-o", "/dev/null", "--wrap", "sleep 3"],
                             capture_output=True, text=True, timeout=30)
        return f"urgent job {res.stdout.strip()}" if res.returncode == 0 else ""

    def _restart(self, daemon: str) -> str:
        pid_file = STATE_DIR / "run" / f"{daemon}.pid"
        try:
            pid = int(pid_file.read_text().split()[0])
            os.kill(pid, signal.SIGTERM)
        except (OSError, ValueError, IndexError):
            return ""
        deadline = time.monotonic() + 60
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        down = self.rng.uniform(2, 10)
        time.sleep(down)
        back = subprocess.run(["bash", str(REPO / "scripts" / "slurm_local.sh"), "start"], capture_output=True,
                              text=True, timeout=300)
        if back.returncode != 0:
            self.tally.problems.append(f"{daemon} did not come back: {back.stdout[-300:]} {back.stderr[-300:]}")
        self.wait_for_controller()
        return f"down {down:.0f} s"

    def _slurmd(self, live, running_jobs, with_ckpt) -> str:
        return self._restart("slurmd")

    def _slurmctld(self, live, running_jobs, with_ckpt) -> str:
        return self._restart("slurmctld")

    def _checkpoint(self, live, running_jobs, with_ckpt) -> str:
        run = self.rng.choice(with_ckpt)
        ckpts = sorted((run / "checkpoints").glob("ckpt-*.pt"))
        if not ckpts:
            return ""
        newest = ckpts[-1]
        try:
            with open(newest, "r+b") as f:
                f.truncate(newest.stat().st_size // 2)
        except FileNotFoundError:   # pruned or replaced this instant
            return ""
        return f"{run.parent.name}/{run.name}/{newest.name} cut to half"

    def _hand_started(self, live, running_jobs, with_ckpt) -> str:
        run, st = self.rng.choice(live)
        t0 = time.monotonic()
        res = subprocess.run([self.python, "-m", "mtl_cluster.train", "--config", str(run / "config.yaml"),
                              "--run-dir", str(run)], cwd=REPO, capture_output=True, text=True, timeout=120,
                             env={**os.environ, "OMP_NUM_THREADS": "1"})
        took = time.monotonic() - t0
        if res.returncode != 3 or "is busy" not in res.stderr:
            if RunDir(run).read_status().get("state") == "running" and runlock.pid_alive(int(st["pid"])):
                self.tally.problems.append(f"a hand-started mtl-train on live {run} was not refused: exit "
                                           f"{res.returncode}: {res.stderr.strip()[-300:]}")
            return f"{run.parent.name}/{run.name}: the trainer had just ended (exit {res.returncode})"
        return f"{run.parent.name}/{run.name}: refused in {took:.1f} s"

    # -- the soak --------------------------------------------------------------------------------
    def event(self, line: str) -> None:
        stamped = f"[{time.time() - self.started:6.0f} s] {line}"
        self.tally.events.append(stamped)
        self.say(stamped)

    def faulting(self) -> bool:
        return time.time() - self.started < self.minutes * 60

    def run(self, fault_every_s: tuple[float, float] = (3.0, 9.0), limit_s: float | None = None) -> Tally:
        """Drive the grid to completion under faults; then check it (``tally.problems``)."""
        self.wait_for_controller()
        ref = self.reference()
        limit_s = limit_s or self.minutes * 60 + 900
        runs = self.run_dirs()
        self.tally.runs = len(runs)
        try:
            relaunch, stuck_since, stuck_rounds = True, None, 0
            while True:
                states = self.states()
                queue = self.queue()
                if queue is None:
                    self.wait_for_controller()
                    continue
                if all(s == "completed" for s in states.values()) and not queue:
                    break
                if time.time() - self.started > limit_s:
                    self.tally.problems.append(f"not complete after {limit_s:.0f} s: {Counter(states.values())}, "
                                               f"queue {queue}")
                    break
                stuck = bool(queue) and all(j["state"] == "PENDING" and j["reason"] in STUCK for j in queue)
                stuck_since = (stuck_since or time.time()) if stuck else None
                if stuck_since is not None and time.time() - stuck_since > 20:
                    # what a user does when mtl-status shows jobs that never start: launch again
                    self.event(f"queued jobs that cannot start: {[(j['id'], j['reason']) for j in queue]}")
                    relaunch, stuck_since, stuck_rounds = True, None, stuck_rounds + 1
                    if stuck_rounds > 3:
                        self.tally.problems.append(f"the launcher leaves jobs that can never start: {queue}")
                        break
                elif not stuck:
                    stuck_rounds = 0
                if relaunch or not queue:
                    failed = [d for d, s in states.items() if s == "failed"]
                    for d in failed:
                        self.event(f"failed: {d.parent.name}/{d.name}: {RunDir(d).read_status().get('reason')}")
                    self.tally.retry_failed += bool(failed)
                    self.tally.relaunch_rounds += self.tally.launches > 0
                    # launches are few: each one while faulting carries a launch fault
                    fault = self._next(self.launch_cycle, LAUNCH_FAULTS, LAUNCH_FAULTS) if self.faulting() else None
                    # after a launch fault the user launches again at once (a launch cut short, or a colleague's
                    # launch that raced theirs): the next launch fault of the round may hit that one too
                    relaunch = self.launch(fault, retry_failed=bool(failed))
                    continue
                time.sleep(self.rng.uniform(*fault_every_s))
                if self.faulting():
                    self.inject()
            self.final_launch()
        finally:
            self.tally.seconds = time.time() - self.started
            # no urgent job of ours may outlive the soak (it would preempt whatever runs next)
            subprocess.run(["scancel", "--name", URGENT], capture_output=True, timeout=30)
            try:
                ref.wait(timeout=900)
            except subprocess.TimeoutExpired:
                ref.kill()
                self.tally.problems.append("the reference grid did not finish in 15 minutes")
        self.check(runs)
        return self.tally

    def final_launch(self) -> None:
        """A user's last launch: nothing left to submit."""
        res = subprocess.run(self.launch_cmd(), cwd=REPO, capture_output=True, text=True, timeout=300)
        self.tally.launches += 1
        if res.returncode != 0 or "nothing to submit" not in res.stdout:
            self.tally.problems.append(f"the last launch had something to do: exit {res.returncode}: "
                                       f"{(res.stdout + res.stderr).strip()[-400:]}")

    # -- the checks ------------------------------------------------------------------------------
    def check(self, runs: list[Path]) -> None:
        t = self.tally
        ref_root, results = self.root / "reference" / "results", self.root / "results"
        lost = doubled = 0
        for d in runs:
            rel = d.relative_to(results)
            st = RunDir(d).read_status()
            same = st.get("state") == "completed" and all(
                (d / f).is_file() and (ref_root / rel / f).is_file()
                and (d / f).read_bytes() == (ref_root / rel / f).read_bytes()
                for f in ("metrics.jsonl", "summary.json"))
            if not same:
                lost += 1
                t.problems.append(f"{rel}: {st.get('state')}, not byte-identical to the undisturbed run")
            overlaps = runlock.holds_overlapped(runlock.read_log(d))
            if overlaps:
                doubled += 1
                t.problems.append(f"{rel}: held by two trainers at once: {'; '.join(overlaps)}")
            epochs = [r for r in read_jsonl(RunDir(d).timings_file) if isinstance(r.get("epoch"), int)]
            recomputed = attempt_costs(read_jsonl(RunDir(d).attempts_file), epochs)[3]
            t.epochs_recomputed += recomputed or 0.0
        t.runs_lost, t.runs_doubled = lost, doubled
        queue = self.queue()
        if queue:
            t.problems.append(f"jobs left in squeue: {queue}")
        temps = [p for base in (results, self.root / "jobs") for p in base.rglob("*") if p.is_file()
                 and (p.name.endswith(".tmp") or ".tmp." in p.name or p.name.startswith(".tmp"))]
        if temps:
            t.problems.append(f"orphan temporary files: {[str(p) for p in temps[:10]]}")
        ran = self.slurm_jobs()
        t.slurm_jobs = len(ran)
        recorded = {str(r.get("job_id")).split("_")[0] for rec in read_records(self.root / "jobs")
                    for r in rec.get("runs", []) if isinstance(r, dict)}
        recorded |= {str(a.get("job_id")).split("_")[0] for rec in read_records(self.root / "jobs")
                     for a in rec.get("arrays", []) if isinstance(a, dict)}
        missing = sorted(ran - recorded)
        if missing:
            t.problems.append(f"jobs Slurm ran that no jobs/ record names: {missing}")

    def slurm_jobs(self) -> set[str]:
        """Array job ids of the soak that sacct knows (every job Slurm accepted for it, whatever became of it)."""
        start = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(self.started - 60))
        res = subprocess.run(["sacct", "-X", "-n", "-P", "-S", start, "-o", "JobID,JobName%200"],
                             capture_output=True, text=True, timeout=60)
        out = set()
        for line in res.stdout.splitlines():
            jid, _, name = line.partition("|")
            if name.startswith(f"mtl:{self.study}"):
                out.add(jid.split("_")[0])
        return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="The chaos soak on the local Slurm (scripts/slurm_local.sh start).")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--minutes", type=float, default=3.0, help="how long faults are injected")
    p.add_argument("--steps", type=int, help="steps per epoch of each run (3 epochs; default 40, more for a "
                                              "longer soak, so that the grid outlasts the minutes of faults)")
    p.add_argument("--root", type=Path, help="where the soak's folders go (default: a new temporary folder)")
    p.add_argument("--json", type=Path, help="also write the tally here")
    args = p.parse_args(argv)
    import tempfile
    root = args.root or Path(tempfile.mkdtemp(prefix=f"chaos-{args.seed}-"))
    steps = args.steps or max(40, round(40 * args.minutes / 2.5))
    soak = Soak(root, args.seed, args.minutes, steps, say=lambda line: print(line, flush=True))
    tally = soak.run()
    print("\n".join(tally.lines()))
    print(f"folders: {root}")
    if args.json:
        args.json.write_text(json.dumps({**{k: v for k, v in tally.__dict__.items() if k != "events"},
                                         "faults": dict(tally.faults)}, indent=2) + "\n")
    return 1 if tally.problems else 0


if __name__ == "__main__":
    sys.exit(main())

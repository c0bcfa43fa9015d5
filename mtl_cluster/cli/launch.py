"""``mtl-launch``: a thin adapter over study/grid/plan/submit/status of ``launch/`` (``mtl-status`` is status.py).
It prints; the library does not. Errors are one line ``mtl-launch: error: ...`` (exit 2 for bad input), via
``common.run``.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..errors import EXIT_FAILED, ConfigError, MtlError
from ..states import State
from .common import grid_args, grid_words, load_grid, run, say_reconciled
from .ui import plain_console

if TYPE_CHECKING:
    from ..launch.clusters import ClusterProfile
    from ..launch.grid import RunSpec
    from ..launch.journal import Journal
    from ..launch.limits import Shape
    from ..launch.plan import PlanRow
    from ..launch.study import Experiments
    from ..launch.submit import ArrayEvent, ArrayGroup, RunEvent


def _launch_args(p: argparse.ArgumentParser) -> None:
    p.description = ("Submit the grid of experiments.yaml to a cluster as Slurm job arrays (or run it here "
                     "with --debug). Idempotent: completed, queued and running runs are skipped.")
    grid_args(p)
    p.add_argument("--logs-dir", type=Path, default=Path("logs"), help="submitit folders (default: logs)")
    p.add_argument("--dry-run", action="store_true", help="print the plan and the sbatch scripts; submit nothing")
    p.add_argument("--retry-failed", action="store_true", help="resubmit failed runs too")
    p.add_argument("--force", action="store_true",
                   help="resubmit every run without a live job (the trainer resumes or skips; nothing is deleted)")
    p.add_argument("--cancel", action="store_true", help="scancel the grid's queued and running jobs")
    p.add_argument("--array-parallelism", type=int, metavar="N", help="tasks of one array running at once")
    p.add_argument("--resources", action="append", default=[], metavar="KEY=VALUE",
                   help="a resource for every run this launch submits, over the profile and the experiments' "
                        "resources: (mem_gb, timeout_min, gres, ...), e.g. --resources mem_gb=32, as mtl-status "
                        "--failures proposes")
    p.add_argument("--throttle", type=int, metavar="N",
                   help="change how many tasks of each of the grid's job arrays with tasks still queued may run "
                        "at once (scontrol update ArrayTaskThrottle; 0: no limit); submits nothing")
    p.add_argument("--parallel", type=int, default=1, metavar="N",
                   help="runs trained at once here (--debug, --demo, cluster local), one thread each or your "
                        "OMP_NUM_THREADS where the cores shared among them allow it (default 1)")
    p.add_argument("--no-preflight", action="store_true", help="skip the data/Slurm checks before submitting")


def plan_table(rows: Sequence[PlanRow], title: str) -> Table:
    table = Table(title=escape(title), title_justify="left")
    for col in ("run", "signature", "state", "action"):
        table.add_column(col, overflow="fold")
    for r in rows:
        st = r.status
        state = st.state + (f" ({st.detail})" if st.detail and st.state in (State.DIED, State.FAILED, State.UNKNOWN)
                            else "")
        act = str(r.action)
        if r.after or r.after_runs:
            act += " after " + ", ".join([*r.after, *(s.label for s in r.after_runs)])
        table.add_row(escape(r.spec.label), r.spec.signature, escape(state), escape(act))
    return table


def _launch(args: argparse.Namespace) -> int:
    from ..launch import journal, ledger, submit
    from ..launch.clusters import launch_resources
    from ..launch.plan import plan, preflight
    from ..launch.status import submits

    if args.parallel < 1:
        raise ConfigError(f"--parallel: must be 1 or more (runs trained at once here), got {args.parallel}")
    exps, prof, specs = load_grid(args)
    assert prof is not None   # mtl-launch needs a cluster (or --debug): load_grid said so already
    extra = launch_resources(prof, args.resources)
    if extra:
        specs = [dataclasses.replace(s, resources={**s.resources, **extra}) for s in specs]
    out, err = plain_console(), plain_console(stderr=True)
    if args.cancel:
        return _cancel(specs, args, out, err)
    if args.throttle is not None:
        if args.dry_run:
            raise ConfigError("--throttle changes the arrays of a running study at once; it has no --dry-run")
        return _throttle(specs, args, out)
    if args.dry_run:
        rows = plan(specs, args.jobs_dir, retry_failed=args.retry_failed, force=args.force)
        return _dry_run(rows, prof, args, out, err)
    submit.check_cluster_choice(prof)
    with ledger.launch_lock(args.jobs_dir):
        settled = journal.reconcile(args.jobs_dir, submit.adopt)     # what launches that died left queued
        say_reconciled(settled, err)
        rows = plan(specs, args.jobs_dir, retry_failed=args.retry_failed, force=args.force, unsure=settled.unsure)
        todo = [r for r in rows if submits(r.action)]
        _cancel_never(rows, err)
        out.print(plan_table(rows, f"{exps.path} on {prof.name}: {len(todo)} of {len(rows)} runs to "
                                   f"{'run here' if not prof.is_slurm else 'submit'}"))
        if not todo:
            out.print("nothing to submit")
            return 0
        if not args.no_preflight:
            problems = preflight(rows, prof, _folders(args, prof))
            shape = _limits(rows, prof, args, err) if prof.is_slurm else None
            problems += shape.refusals if shape is not None else []
            if problems:
                raise ConfigError("preflight: " + "; ".join(problems) + " (--no-preflight to submit anyway)")
            if shape is not None:
                prof = _reshape(rows, prof, args, shape, err)
                todo = [r for r in rows if submits(r.action)]
            _warn_counts(rows, prof, err)
        record = _record(exps, prof, args)
        if prof.is_slurm:
            jr = journal.Journal(args.jobs_dir, prof.name, str(Path(args.logs_dir).absolute() / prof.name / "%j"))
            try:
                groups = _submit(rows, prof, args, err, jr)
            except (MtlError, KeyboardInterrupt) as exc:   # record what did reach Slurm before saying why
                kept = journal.reconcile(args.jobs_dir, submit.adopt)
                say_reconciled(kept, err)
                if isinstance(exc, KeyboardInterrupt):
                    raise
                raise MtlError(f"{exc}; {kept.adopted_runs} run(s) queued before it are recorded; "
                               f"run mtl-launch again to submit the rest") from exc
            arrays = [{"job_id": g.job_id, "size": len(g.rows), "dependency": g.dependency,
                       "parallelism": min(len(g.rows), args.array_parallelism or g.prof.array_parallelism)}
                      for g in groups]
            record["arrays"] = arrays
            failed = 0
        else:
            results = _run_here(rows, err, args.parallel)
            failed = sum(1 for rc, _ in results.values() if rc != 0)
        runs: list[dict[str, object]] = [
            {"name": r.spec.name, "label": r.spec.label, "signature": r.spec.signature,
             "run_dir": str(r.spec.run_dir), "action": str(r.action), "job_id": r.job_id,
             "log": r.log, "depends_on": r.after + [str(s.run_dir) for s in r.after_runs]}
            for r in todo]
        record["runs"] = runs
        if not prof.is_slurm:
            for run, r in zip(runs, todo):
                run["exit_code"], run["last_line"] = results.get(r.spec.run_dir, (None, ""))
        path = ledger.write_record(args.jobs_dir, record)
        if prof.is_slurm:
            jr.close()
    if prof.is_slurm:
        out.print(f"submitted {len(todo)} runs in {len(arrays)} array(s); record {path}; "
                  f"follow with: {status_command(args)}", markup=False)
        return 0
    out.print(f"{len(todo) - failed} of {len(todo)} runs completed in {args.results}; record {path}", markup=False)
    return EXIT_FAILED if failed else 0


def _cancel_never(rows: Sequence[PlanRow], err: Console) -> None:
    """scancel the grid's queued jobs that can never start (a dependency on a job that failed or was cancelled):
    their runs are submitted again now, or wait for their parent's run; either way squeue keeps one job per
    run and none that is dead."""
    from ..launch import slurmq

    never = sorted({r.status.job_id for r in rows if r.status.job_state == slurmq.NEVER and r.status.job_id})
    if not never:
        return
    why = slurmq.cancel(never)
    if why:
        raise MtlError(f"cannot cancel job(s) {', '.join(never)}, which can never start: {why}; cancel them by "
                       f"hand (scancel), then launch again")
    err.print(f"cancelled {len(never)} job(s) that could never start (the job they followed failed or was "
              f"cancelled): {', '.join(never)}", markup=False)


def _folders(args: argparse.Namespace, prof: ClusterProfile) -> list[tuple[str, Path]]:
    """The folders a launch writes to: run folders, launch records, and (Slurm) submitit's logs."""
    out = [("results", args.results), ("jobs", args.jobs_dir)]
    return out + [("logs", args.logs_dir)] if prof.is_slurm else out


def status_command(args: argparse.Namespace) -> str:
    """The mtl-status command that shows this launch's runs, quoted for a shell (``common.grid_words``)."""
    import shlex
    return shlex.join(grid_words("mtl-status", args))


def _submit(rows: Sequence[PlanRow], prof: ClusterProfile, args: argparse.Namespace, err: Console,
            jr: Journal) -> list[ArrayGroup]:
    """Submit the arrays with a rich bar on a terminal (a line per sbatch call otherwise)."""
    from ..launch import submit

    def line(i: ArrayEvent) -> str:
        return (f"submitted array {i['n']}/{i['of']}: job {i['job_id']} ({i['size']} runs"
                + (f", {i['dependency']})" if i["dependency"] else ")"))

    if not err.is_terminal:
        return submit.submit(rows, prof, args.logs_dir, jr, array_parallelism=args.array_parallelism,
                             on_event=lambda _k, i: err.print(line(i), markup=False), study=_study(args))
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    with Progress(TextColumn("sbatch"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err) as bar:
        task = bar.add_task("arrays", total=None)

        def event(_kind: str, i: ArrayEvent) -> None:
            bar.update(task, total=i["of"], completed=i["n"])
            bar.console.print(line(i), markup=False)
        return submit.submit(rows, prof, args.logs_dir, jr, array_parallelism=args.array_parallelism,
                             on_event=event, study=_study(args))


def _study(args: argparse.Namespace) -> str:
    """The study's name in job names: the experiments file's stem (experiments.yaml -> experiments)."""
    return Path(args.experiments).stem


def _record(exps: Experiments, prof: ClusterProfile, args: argparse.Namespace) -> dict[str, object]:
    import hashlib

    from ..launch.ledger import git_commit
    return {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "cluster": prof.name, "debug": args.debug, "demo": args.demo,
            "experiments": str(Path(args.experiments).absolute()),
            "config_hash": hashlib.sha256(exps.text.encode()).hexdigest()[:12],
            "git_commit": git_commit(Path(args.experiments).absolute().parent),
            "argv": sys.argv[1:], "overrides": args.overrides, "only": args.only,
            "results": str(Path(args.results).absolute())}


def _dry_run(rows: Sequence[PlanRow], prof: ClusterProfile, args: argparse.Namespace, out: Console,
            err: Console) -> int:
    from ..launch import journal, submit
    from ..launch.plan import preflight
    from ..launch.status import submits

    shape = _limits(rows, prof, args, err, out) if prof.is_slurm and not args.no_preflight else None
    if shape is not None:
        prof = _reshape(rows, prof, args, shape, err)
    todo = [r for r in rows if submits(r.action)]
    out.print(plan_table(rows, f"{args.experiments} on {prof.name} (dry run): {len(todo)} of {len(rows)} "
                               f"runs would be {'submitted' if prof.is_slurm else 'run here'}"))
    if shape is not None:
        for problem in shape.refusals:
            err.print(f"mtl-launch: warning: {problem}", markup=False)
    if prof.is_slurm:
        for i, (group, script) in enumerate(submit.sbatch_scripts(rows, prof, args.logs_dir,
                                                                  args.array_parallelism, _study(args)), 1):
            out.print(f"\n# ---- sbatch script {i}: {len(group.rows)} runs: "
                      f"{', '.join(r.spec.label for r in group.rows[:4])}{' ...' if len(group.rows) > 4 else ''}",
                      markup=False)
            out.print(script, markup=False, highlight=False, soft_wrap=True)
    if not args.no_preflight:
        for problem in preflight(rows, prof, _folders(args, prof)):
            err.print(f"mtl-launch: warning: {problem}", markup=False)
        _warn_counts(rows, prof, err)
    if any(journal.folder(args.jobs_dir).glob("*.jsonl")):
        err.print(f"mtl-launch: warning: {journal.folder(args.jobs_dir)} holds the journal of an interrupted "
                  f"launch; this plan may list its queued runs as new (mtl-status or mtl-launch settles it)",
                  markup=False)
    return 0


def _limits(rows: Sequence[PlanRow], prof: ClusterProfile, args: argparse.Namespace, err: Console,
            shown: Console | None = None) -> Shape:
    """Read the cluster's own limits (``shown``: print what was read, for --dry-run) and check the launch
    against them. Returns limits.Shape (its notes, what the cluster would not say, are _reshape's to print:
    a refused launch says one line)."""
    from ..launch import limits, slurmq
    from ..launch.status import submits

    if slurmq.reachable() is not None:     # preflight says why; asking again would only wait for timeouts
        return limits.Shape()
    lim = limits.read()
    if shown is not None:
        for line in lim.lines(prof.partition):
            shown.print(f"limit: {line}", markup=False, soft_wrap=True)
        if lim.unenforced:
            err.print(f"mtl-launch: note: {lim.unenforced}", markup=False)
    return limits.check(limits.launch_profiles(rows, prof), lim, sum(1 for r in rows if submits(r.action)),
                        args.array_parallelism)


def _reshape(rows: Sequence[PlanRow], prof: ClusterProfile, args: argparse.Namespace, shape: Shape,
             err: Console) -> ClusterProfile:
    """Apply what limits.check reshaped (one line each): the profile with the cluster's array size,
    --array-parallelism capped, the runs past MaxSubmitJobs held back to the next launch."""
    import dataclasses

    from ..launch import limits

    for note in shape.notes:
        err.print(f"mtl-launch: note: {note}", markup=False)
    for line in shape.changes:
        err.print(f"mtl-launch: {line}", markup=False)
    if shape.max_array_size is not None:
        prof = dataclasses.replace(prof, max_array_size=shape.max_array_size)
    if shape.array_parallelism is not None:
        args.array_parallelism = min(shape.array_parallelism, args.array_parallelism or shape.array_parallelism)
    if shape.submit_at_most is not None:
        limits.keep_under(rows, shape.submit_at_most, "held back: over MaxSubmitJobs; launch again later")
    return prof


def _warn_counts(rows: Sequence[PlanRow], prof: ClusterProfile, err: Console) -> None:
    """A partial dataset copy under the default ``data_counts: warn`` (``refuse`` makes it a preflight problem)."""
    from ..launch.plan import data_count_shortfalls

    for line in data_count_shortfalls(rows, prof) if prof.data_counts == "warn" else []:
        err.print(f"mtl-launch: warning: {line}", markup=False)


def _run_here(rows: Sequence[PlanRow], err: Console, parallel: int = 1) -> dict[Path, tuple[int, str]]:
    from ..launch import submit

    if not err.is_terminal:
        def plain(kind: str, i: RunEvent) -> None:
            if kind == "run_start":
                err.print(f"[{i['i']}/{i['n']}] {i['row'].spec.label}: training", markup=False)
            elif kind == "run_end":
                what = f"done in {i['seconds']:.1f}s" if i["rc"] == 0 else f"FAILED (exit {i['rc']}): {i['last']}"
                err.print(f"[{i['i']}/{i['n']}] {i['row'].spec.label}: {what}", markup=False)
        return submit.run_here(rows, plain, parallel)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err) as bar:
        task = bar.add_task("runs", total=sum(1 for r in rows if r.action.submits))
        active: list[str] = []

        def rich_event(kind: str, i: RunEvent) -> None:
            label = i["row"].spec.label
            if kind == "run_start":
                active.append(label)
            elif kind == "run_end":
                if label in active:
                    active.remove(label)
                bar.advance(task)
            bar.update(task, description=f"training {', '.join(active)}" if active else "runs")
            if kind == "run_end":
                mark = "[green]✓[/]" if i["rc"] == 0 else "[red]✗[/]"
                tail = f"{i['seconds']:.1f}s" if i["rc"] == 0 else f"exit {i['rc']}: {i['last']}"
                bar.console.print(f"{mark} {escape(i['row'].spec.label)}  {escape(tail)}")
        return submit.run_here(rows, rich_event, parallel)


def _cancel(specs: Sequence[RunSpec], args: argparse.Namespace, out: Console, err: Console) -> int:
    from ..launch import journal, ledger, slurmq

    say_reconciled(journal.reconcile_if_idle(args.jobs_dir), err)   # orphans of a launch that died: adopted, held
    jobs = ledger.latest_jobs(args.jobs_dir)
    mine = ledger.job_ids(jobs, (s.run_dir for s in specs))
    states = slurmq.slurm_states(mine.values())
    live = sorted({j for j in mine.values() if states.get(j) in slurmq.LIVE})
    if not live:
        out.print("no queued or running jobs in this grid")
        return 0
    why = slurmq.cancel(live)
    if why:
        raise ConfigError(f"scancel: {why}")
    out.print(f"cancelled {len(live)} job(s): {' '.join(live)}")
    return 0


def _throttle(specs: Sequence[RunSpec], args: argparse.Namespace, out: Console) -> int:
    """--throttle N: ArrayTaskThrottle=N on every array of the grid with a task queued or running, recorded in
    its jobs/ record."""
    from ..launch import ledger, slurmq, throttle

    if args.throttle < 0:
        raise ConfigError(f"--throttle: must be 0 (no limit) or more tasks at once, got {args.throttle}")
    with ledger.launch_lock(args.jobs_dir):
        jobs = ledger.latest_jobs(args.jobs_dir)
        ids = ledger.job_ids(jobs, (s.run_dir for s in specs))
        arrays = throttle.live_arrays(jobs, ids, slurmq.slurm_states(ids.values()), pending=True)
        if not arrays:
            out.print("no job array of this grid has a task still queued: nothing to throttle")
            return 0
        done = throttle.throttle(arrays, args.throttle)
    if done.arrays:
        out.print(f"throttled {len(done.arrays)} array(s) to {args.throttle or 'any number of'} task(s) at once: "
                  f"job(s) {' '.join(done.arrays)} (scontrol update ArrayTaskThrottle={args.throttle}); recorded "
                  f"in {', '.join(done.records)}", markup=False, soft_wrap=True)
    if done.failed:
        raise MtlError("scontrol update ArrayTaskThrottle failed for " +
                       "; ".join(f"job {a}: {why}" for a, why in done.failed.items()))
    return 0


def launch_main(argv: Sequence[str] | None = None) -> int:
    """``mtl-launch``."""
    return run("mtl-launch", argv, _launch_args, _launch)


def entry_launch() -> None:
    sys.exit(launch_main())

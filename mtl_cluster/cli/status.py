"""``mtl-status``: the state of every run of a grid, once or refreshed (``--watch``, watch.py); the grid's flags and
its loading are common.py's, shared with ``mtl-launch``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

from .common import grid_args, load_grid, run, say_reconciled
from .ui import plain_console, status_table, study_eta_line, waiting_lines

if TYPE_CHECKING:
    from ..launch.ledger import JobRef


def _status_args(p: argparse.ArgumentParser) -> None:
    p.description = ("The state of every run of the grid: run folders plus squeue/sacct (with timeouts). The grid "
                     "is the launch's: give the same --debug, --demo, --only, --set and --results as mtl-launch.")
    grid_args(p, status=True)
    p.add_argument("--watch", nargs="?", type=_seconds, const=10.0, metavar="SECONDS",
                   help="refresh every SECONDS (default 10) until every run has finished; a live table on a "
                        "terminal, a line per run that changed otherwise (put it after the experiments file)")
    p.add_argument("--failures", action="store_true",
                   help="the failed, stalled and killed runs grouped by cause (out of memory, time limit, NaN loss, "
                        "data, exception...), each group with a log and the mtl-launch command that retries it")
    p.set_defaults(need_cluster=False)


def _seconds(text: str) -> float:
    import math
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value < 86400:
        raise argparse.ArgumentTypeError(f"{text!r} is not a refresh interval in seconds (above 0), e.g. --watch 10")
    return value


def _status(args: argparse.Namespace) -> int:
    from collections import Counter

    from ..launch import journal, ledger, slurmq
    from ..launch.status import grid_status

    exps, _prof, specs = load_grid(args)
    if any(journal.folder(args.jobs_dir).glob("*.jsonl")):   # a launch died: settle it first
        from ..launch.submit import adopt
        say_reconciled(journal.reconcile_if_idle(args.jobs_dir, adopt), plain_console(stderr=True))
    if args.watch is not None:
        from .watch import watch
        return watch(exps, specs, args)
    jobs = ledger.latest_jobs(args.jobs_dir)
    ids = ledger.job_ids(jobs, (s.run_dir for s in specs))
    states = slurmq.slurm_states(ids.values())
    pending = slurmq.waiting() if any(s == "PENDING" for s in states.values()) else None
    statuses = grid_status(specs, jobs, states, pending)
    out = plain_console()
    if args.failures:
        from .failures import print_failures
        return print_failures(statuses, _prof, args, out,
                              [jobs[str(s.run_dir)].cluster for s in specs if str(s.run_dir) in jobs])
    counts = Counter(st.state for st in statuses)
    which = " (demo grid)" if args.demo else " (debug grid)" if args.debug else ""
    out.print(status_table(statuses, f"{exps.path}{which}: {len(specs)} runs"))
    out.print(", ".join(f"{n} {s}" for s, n in counts.most_common()))
    for line in waiting_lines(statuses):
        out.print(line, markup=False, soft_wrap=True)
    for line in throttle_lines(args.jobs_dir, jobs, ids, states):
        out.print(line, markup=False, soft_wrap=True)
    from ..launch import eta, throttle
    study = study_eta_line(eta.study_eta(statuses, throttle.parallelism(args.jobs_dir)))
    if study:
        out.print(study, markup=False, soft_wrap=True)
    return 0


def throttle_lines(jobs_dir: Path, jobs: Mapping[str, JobRef], ids: Mapping[str, str],
                   states: Mapping[str, str]) -> list[str]:
    """One line per live array of the grid that mtl-launch --throttle changed."""
    from ..launch import throttle

    live = throttle.live_arrays(jobs, ids, states)
    return [f"array {t.array}: {t.throttle or 'any number of'} task(s) at once (mtl-launch --throttle "
            f"{t.throttle}, {t.time})" for t in throttle.recorded(jobs_dir, live).values()]


def status_main(argv: Sequence[str] | None = None) -> int:
    """``mtl-status``."""
    return run("mtl-status", argv, _status_args, _status)


def entry_status() -> None:
    sys.exit(status_main())

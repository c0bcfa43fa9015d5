"""``mtl-status --watch``: the grid's table redrawn in place until every run has finished, or a line per run
that changed when stdout is not a terminal. The loop and the drawing only: what a run's state, ETA and
"finished" are is ``launch/status.py``'s. Ctrl-C ends it (exit 130, via ``common.run``); a scheduler hiccup is a note.
"""
from __future__ import annotations

import argparse
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.markup import escape
from rich.text import Text

from ..launch.status import RunStatus
from ..states import FINAL_STATES

if TYPE_CHECKING:
    from ..launch.grid import RunSpec
    from ..launch.study import Experiments


class _Poll:
    """One refresh: the ledger again (a launch may add jobs meanwhile), Slurm, the run folders."""

    def __init__(self, specs: Sequence[RunSpec], jobs_dir: Path):
        self.specs, self.jobs_dir = specs, jobs_dir
        self.known: dict[str, str] = {}          # job id -> its last state Slurm did answer
        self.statuses: list[RunStatus] = []
        self.answered = False                    # one refresh read the run folders: "finished" can be judged

    def refresh(self) -> str:
        """Update ``statuses``; returns a one-line note when something could not be asked (else "")."""
        from ..launch import ledger, slurmq
        from ..launch.status import grid_status, keep_known

        try:
            jobs = ledger.latest_jobs(self.jobs_dir)
            ids = ledger.job_ids(jobs, (s.run_dir for s in self.specs))
            fresh = slurmq.slurm_states(ids.values())
            states, kept = keep_known(fresh, self.known)
            self.known.update({j: s for j, s in fresh.items() if s != slurmq.UNKNOWN})
            pending = slurmq.waiting() if "PENDING" in states.values() else None
            self.statuses, self.answered = grid_status(self.specs, jobs, states, pending), True
        except (OSError, ValueError) as exc:   # a run folder or jobs/ unreadable for a moment: keep the last table
            return f"could not read the run folders ({type(exc).__name__}: {exc}); showing the last refresh"
        if slurmq.UNKNOWN in fresh.values():
            return (f"squeue did not answer (failed or timed out): {len(kept)} job(s) keep their last known "
                    f"state, {sum(1 for s in states.values() if s == slurmq.UNKNOWN)} unknown")
        return ""

    def finished(self) -> bool:
        """No run queued, running or unknown, and no mtl-launch under way on these jobs/ (a local launch's
        runs look new until it reaches them)."""
        from ..launch.ledger import launch_running
        from ..launch.status import idle

        return self.answered and idle(self.statuses) and not launch_running(self.jobs_dir)


def _counts(statuses: Sequence[RunStatus]) -> str:
    return ", ".join(f"{n} {s}" for s, n in Counter(st.state for st in statuses).most_common())


def watch(exps: Experiments, specs: Sequence[RunSpec], args: argparse.Namespace) -> int:
    """Refresh every ``args.watch`` seconds until every run has finished; 0 then."""
    from .ui import plain_console

    out = plain_console()
    title = (f"{exps.path}{' (debug grid)' if args.debug else ''}: {len(specs)} runs, every {args.watch:g}s "
             f"(Ctrl-C to stop)")
    poll = _Poll(specs, args.jobs_dir)
    note = poll.refresh()
    if out.is_terminal:
        _live(out, poll, note, title, args.watch)
    else:
        _plain(out, poll, note, title, args.watch)
    done = all(st.state in FINAL_STATES for st in poll.statuses)
    out.print(("every run has finished: " if done else "nothing is queued or running any more: ")
              + _counts(poll.statuses), markup=False)
    return 0


def _frame(poll: _Poll, note: str, title: str) -> RenderableType:
    from .ui import status_table, waiting_lines

    # the counts and the note first: a grid taller than the terminal is cut at the bottom
    parts: list[RenderableType] = [Text(f"{_counts(poll.statuses)}; updated {time.strftime('%H:%M:%S')}",
                                        style="dim")]
    if note:
        parts.append(Text(note, style="yellow"))
    from ..launch import eta, throttle
    from .ui import study_eta_line
    study = study_eta_line(eta.study_eta(poll.statuses, throttle.parallelism(poll.jobs_dir)))
    return Group(*parts, status_table(poll.statuses, title, log=False),
                 *(Text(line, style="blue") for line in waiting_lines(poll.statuses)),
                 *([Text(study, style="dim")] if study else []))


def _live(out: Console, poll: _Poll, note: str, title: str, every: float) -> None:
    """The table redrawn in place (rich Live); the last frame stays on the screen."""
    with Live(_frame(poll, note, title), console=out, auto_refresh=False) as live:
        while not poll.finished():
            time.sleep(every)
            note = poll.refresh()
            live.update(_frame(poll, note, title), refresh=True)


def _plain(out: Console, poll: _Poll, note: str, title: str, every: float) -> None:
    """Off a terminal (a log, a pipe): each refresh, one line per run whose state, epoch or job changed."""
    from ..launch.status import last_metrics_text
    from .ui import epoch_text, eta_text, job_text, state_text

    out.print(f"watching {escape(title)}", markup=False)
    shown: dict[str, tuple[Any, ...]] = {}
    last_note = ""
    while True:
        stamp = time.strftime("%H:%M:%S")
        if note and note != last_note:
            out.print(f"{stamp} note: {note}", markup=False)
        last_note = note
        for st in poll.statuses:
            key = (st.state, st.epoch or 0, st.job_id)
            if shown.get(st.spec.label) == key:
                continue
            shown[st.spec.label] = key
            cells = [("", state_text(st)), ("epoch ", epoch_text(st)), ("ETA ", eta_text(st)),
                     ("job ", job_text(st)), ("attempts ", str(st.attempts or "")), ("", last_metrics_text(st.metrics))]
            out.print(f"{stamp} {st.spec.label}: " + "; ".join(k + v for k, v in cells if v), markup=False,
                      soft_wrap=True)
        if poll.finished():
            return
        time.sleep(every)
        note = poll.refresh()

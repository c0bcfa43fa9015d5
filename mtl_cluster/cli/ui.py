"""Terminal output: rich tables and progress on a terminal, plain lines otherwise. No business logic."""
from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Sequence

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..states import State
from ..tasks import METRIC_BY_KEY, METRICS

if TYPE_CHECKING:
    from rich.progress import TaskID

    from ..launch.eta import StudyEta
    from ..launch.status import RunStatus
    from ..rundir import Summary
    from ..train.loop import ProgressInfo


def stderr_console() -> Console:
    return Console(stderr=True, highlight=False)


def stdout_console() -> Console:
    return Console(highlight=False)


def setup_logging(verbose: bool = False) -> None:
    """Library log records -> stderr as short plain lines (the run's log.txt gets its own handler)."""
    logger = logging.getLogger("mtl_cluster")
    if any(getattr(h, "_mtl_console", False) for h in logger.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    handler.setLevel(logging.DEBUG if verbose else logging.INFO)
    handler.addFilter(lambda record: not getattr(record, "file_only", False))
    handler._mtl_console = True  # type: ignore[attr-defined]  # our mark: set up once per process
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)


def duration_text(seconds: float | None, rough: bool = False) -> str:
    """42s, 14m05s, 3h05m, 2d03h: a remaining time at a glance ("~" when it is a rough figure)."""
    if seconds is None:
        return ""
    s = int(round(seconds))
    text = (f"{s}s" if s < 60 else f"{s // 60}m{s % 60:02d}s" if s < 3600 else
            f"{s // 3600}h{s % 3600 // 60:02d}m" if s < 48 * 3600 else f"{s // 86400}d{s % 86400 // 3600:02d}h")
    return ("~" if rough else "") + text


def summary_table(summary: Summary) -> Table:
    """One run's numbers: per metric, the test split at the epoch its task's validation loss chose, and at
    the final epoch (a summary from before the test split shows its validation numbers instead)."""
    if "selection" not in summary:
        return _v1_summary_table(summary)
    table = Table(title=f"{summary['name']}  ({summary['signature']}, {summary['epochs']} epochs, "
                        f"{summary.get('budget', {}).get('steps', '?')} steps)")
    table.add_column("metric")
    table.add_column("dataset / test split")
    for name in ("selected epoch", "test at selected", f"test at final (epoch {summary['epochs']})"):
        table.add_column(name, justify="right")
    final = summary["final"].get("test") or {}
    for key in summary.get("metrics", []):
        m = METRIC_BY_KEY.get(key)
        sel = summary["selection"]["tasks"].get(m.task) if m else None
        if m is None or not sel or key not in (sel.get("test") or {}):
            continue
        where = f"{summary['datasets'][m.task]} / {summary['splits'][m.task]['test']}"
        table.add_row(m.header, where, str(sel["epoch"]), f"{sel['test'][key]:.{m.decimals}f}",
                      f"{final.get(key, float('nan')):.{m.decimals}f}")
    return table


def _v1_summary_table(summary: Summary) -> Table:
    table = Table(title=f"{summary['name']}  ({summary['signature']}, {summary['epochs']} epochs; validation "
                        f"split only: a run from before the test split)")
    table.add_column("metric")
    table.add_column(f"final (epoch {summary['epochs']})", justify="right")
    table.add_column(f"best (epoch {summary['best_epoch']})", justify="right")
    final, best = summary["final"]["val"] or {}, summary["best"]["val"] or {}
    for m in METRICS:
        if m.key in final:
            table.add_row(m.header, f"{final[m.key]:.{m.decimals}f}", f"{best.get(m.key, float('nan')):.{m.decimals}f}")
    return table


class EpochPrinter:
    """Progress callback for a training run: rich bars on a terminal (image cache, epoch), lines otherwise."""

    def __init__(self, console: Console, total_epochs: int):
        self.console = console
        self.total = total_epochs
        self.bar = None
        self.cache_task: TaskID | None = None
        if console.is_terminal:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TimeElapsedColumn(), console=console, transient=True)
            self.task = self.bar.add_task(f"epoch 1/{total_epochs}", total=None)
            self.bar.start()

    def __call__(self, event: str, info: ProgressInfo) -> None:
        if self.bar is not None and event == "step":
            self.bar.update(self.task, completed=info["step"], total=info["steps"],
                            description=f"epoch {info['epoch']}/{self.total}")
        elif event == "cache":
            self._cache(info)

    def _cache(self, info: ProgressInfo) -> None:
        """The image cache being built: a bar per split on a terminal, one line per split otherwise."""
        label = f"decoding {info['split']}:{info['task']} into the image cache"
        done = info["done"] == info["total"]
        if self.bar is None:
            if done:
                self.console.print(f"{label}: {info['total']} images")
            return
        if self.cache_task is None:
            self.cache_task = self.bar.add_task(label, total=info["total"])
        self.bar.update(self.cache_task, completed=info["done"])
        if done:
            self.bar.remove_task(self.cache_task)
            self.cache_task = None

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


# -- mtl-status's table, shared by the one-shot view (status.py) and the live one (watch.py) ---------------
PLAIN_WIDTH = 200   # rich wraps at 80 columns when not on a terminal: keep one run per line in logs


def plain_console(stderr: bool = False) -> Console:
    """A console without highlighting; off a terminal, wide enough for one run per line."""
    c = Console(stderr=stderr, highlight=False)
    if not c.is_terminal:
        c = Console(stderr=stderr, highlight=False, width=PLAIN_WIDTH)
    return c


def status_table(statuses: Sequence[RunStatus], title: str, log: bool = True) -> Table:
    """mtl-status's table (``log``: the log file column; the live view leaves it out for room)."""
    from ..launch.status import last_metrics_text

    table = Table(title=escape(title), title_justify="left")
    for col in ("run", "state", "epoch", "ETA", "last validation", "job", "attempts", *(["log"] if log else [])):
        table.add_column(col, overflow="fold")
    style = {State.COMPLETED: "green", State.FAILED: "red", State.DIED: "red", State.RUNNING: "cyan",
             State.QUEUED: "blue", State.INTERRUPTED: "yellow", State.UNKNOWN: "magenta"}
    for st in statuses:
        state = escape(state_text(st))
        table.add_row(escape(st.spec.label), f"[{style[st.state]}]{state}[/]" if st.state in style else state,
                      escape(epoch_text(st)), eta_text(st), escape(last_metrics_text(st.metrics)),
                      escape(job_text(st)), str(st.attempts or ""), *([escape(st.log or "")] if log else []))
    return table


def state_text(st: RunStatus) -> str:
    return st.state + (f": {st.detail}" if st.detail and st.state != State.COMPLETED else "")


def epoch_text(st: RunStatus) -> str:
    """``2/40`` epochs done, ``+310/464`` steps into the next while it trains."""
    epoch = f"{st.epoch or 0}/{st.epochs}" if st.state != State.NEW else ""
    if st.state in (State.RUNNING, State.DIED, State.INTERRUPTED) and st.step and st.steps:
        epoch += f" +{st.step}/{st.steps}"
    return epoch


def eta_text(st: RunStatus) -> str:
    return duration_text(st.eta_s, st.eta_rough) if st.state == State.RUNNING else ""


def job_text(st: RunStatus) -> str:
    return (st.job_id or "") + (f" {st.job_state}" if st.job_state and st.job_id else "")


def waiting_lines(statuses: Sequence[RunStatus], shown: int = 3) -> list[str]:
    """Below mtl-status's table, one line per reason queued runs wait for: the plain words, squeue's code,
    the runs (with their jobs), what to do, and Slurm's expected start where it has one."""
    from ..launch.reasons import start_text
    from ..launch.status import waiting_groups

    lines = []
    for w in waiting_groups(statuses):
        runs = ", ".join(f"{st.spec.label} (job {st.job_id})" for st in w.runs[:shown])
        runs += f" and {len(w.runs) - shown} more" if len(w.runs) > shown else ""
        jobs = ",".join(st.job_id or "" for st in w.runs)
        line = f"{len(w.runs)} queued run(s) {w.reason.words} [{w.reason.code}]: {runs}"
        if w.reason.todo:
            line += f"; {w.reason.todo.replace('<job>', jobs)}"
        start = start_text(w.start)
        if start:
            line += f"; Slurm expects the first to start at {start} (squeue --start)"
        lines.append(line)
    return lines


def study_eta_line(eta: StudyEta, now: float | None = None) -> str | None:
    """``study ETA: the last run should end at 10:42 (in 14m05s): ...`` (None when nothing is queued or running)."""
    import time

    if eta.running + eta.queued + eta.held == 0:
        return None
    now = time.time() if now is None else now
    what = f"{eta.running} running, {eta.queued} queued in {eta.arrays} array(s)"
    rest = (f"; {eta.not_counted} run(s) without a job not counted (mtl-launch submits them)"
            if eta.not_counted else "")
    rest += (f"; {eta.held} held run(s) not counted (they start once released: scontrol release <job>)"
             if eta.held else "")
    if eta.finish is None:
        why = "no epoch or step of its runs timed" if eta.running + eta.queued else "every queued run is held"
        return f"study ETA: not known yet ({why}): {what}{rest}"
    when = time.strftime("%H:%M" if eta.finish - now < 20 * 3600 else "%m-%d %H:%M", time.localtime(eta.finish))
    return (f"study ETA: the last run should end at {when} (in {duration_text(eta.finish - now, eta.rough)}): "
            f"{what}, from measured epoch and step times, the arrays' parallelism and the dependencies{rest}")

"""``mtl-collect [results/]``: run folders -> the multitask-vs-single-task comparison table.

A thin adapter over ``scan.load_runs`` -> ``compare.build_report`` -> ``tables`` / ``plots``; errors go
through ``common.run`` (one line, exit code, --traceback). Never writes into the results root unless told
to with --out/--plots pointing there.

Exit codes: 0 table printed (runs that are not in it are listed, which is not an error);
1 no run folder at all under the root (nothing to compare: usually a wrong path); 2 bad arguments
or a root that is not a folder.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from ..collect.compare import STATS
from ..collect.scan import SELECTS
from ..collect.tables import FORMATS, SUFFIXES
from ..errors import EXIT_FAILED, ConfigError
from .common import run

if TYPE_CHECKING:
    import pandas as pd

    from ..collect.compare import Report
    from ..collect.rightsize import Proposal

PROG = "mtl-collect"
PREDICTIONS_OF = {"best": "selected", "last": "final", "joint": "joint"}   # --select -> predictions.json's epoch


def _args(p: argparse.ArgumentParser) -> None:
    p.description = ("Turn run folders (found at any depth under ROOT) into the comparison table: one row per "
                     "experiment, mean ± std over seeds, multitask minus single-task deltas with 95% CIs. "
                     "Runs that are running, failed, damaged or duplicated are listed under the table.")
    p.add_argument("root", nargs="?", type=Path, default=Path("results"), metavar="ROOT",
                   help="results root (default: results)")
    p.add_argument("--select", choices=SELECTS, default="best",
                   help="which epoch of each run: best = per task, the epoch of that task's lowest validation "
                        "loss, reported on the test split; joint = one epoch per run for all its tasks (the lowest "
                        "mean of each task's validation loss over its first epoch's), so a row is one model; last = "
                        "the final epoch, no selection (default: best)")
    p.add_argument("--stat", choices=STATS, default="paired",
                   help="Δ rows: paired = per-seed differences, t interval (default); welch = unpaired means")
    p.add_argument("--no-image-tests", action="store_true",
                   help="skip the paired per-image tests (per seed: McNemar, bootstrap; across seeds: a two-way "
                        "bootstrap over seeds and images) that read the Δ rows' predictions")
    p.add_argument("--seeds-for", metavar="DELTA", type=_wanted,
                   help="print how many seeds each Δ cell needs to detect an effect of DELTA at 80%% power (paired "
                        "t, the observed spread of its per-seed differences), DELTA in the metric's unit (points "
                        "for accuracies, years for MAE): one number for every metric, or METRIC=VALUE,... "
                        "(e.g. smile_acc=1,age_mae=0.5)")
    p.add_argument("--reference", choices=("seed",), default=None,
                   help="seed: add the seed's published table values as rows marked 'published'")
    p.add_argument("--cost", action="store_true",
                   help="add cost columns (trainable parameters, GPU-hours, wall-hours, images/s, epochs recomputed "
                        "after interruptions; mean per run; and, where the runs recorded them, peak host and GPU "
                        "memory, share of the time limit and GPU utilisation: docs/failures.md), each multitask "
                        "row's cost against its single-task rows, and a study total")
    p.add_argument("--right-size", action="store_true",
                   help="also print, per experiment, the Slurm limits its runs' measured use calls for (timeout_min: "
                        "1.5x the longest run's wall time; mem_gb: 1.25x the peak host memory) beside the limits "
                        "they ran under; writes nothing unless --write-resources (docs/failures.md)")
    p.add_argument("--write-resources", type=Path, metavar="STUDY_YAML",
                   help="with --right-size: write each experiment's proposed timeout_min/mem_gb into its resources: "
                        "in STUDY_YAML (e.g. experiments.yaml), so the next mtl-launch asks for them; only those "
                        "values' text changes, the old file is kept as STUDY_YAML.bak")
    p.add_argument("--format", choices=("table", *FORMATS),
                   help="table (rich, terminal), md (the group's notes layout), csv (tidy numbers), json, latex, "
                        "html (one self-contained page with the curves); default: table, or from the --out suffix")
    p.add_argument("--out", type=Path, metavar="FILE", help="write the chosen format to FILE (the table still "
                                                            "shows on the terminal)")
    p.add_argument("--plots", type=Path, metavar="DIR",
                   help="also write one PNG per section and task: validation metric by epoch, MTL vs STL")
    p.add_argument("--workers", type=int, default=None,
                   help="threads reading run folders (default: 8 on a network file system, else 1)")


def _wanted(text: str) -> dict[str, float]:
    """``--seeds-for``: ``2`` (every metric) or ``smile_acc=1,age_mae=0.5``, each effect positive."""
    from ..tasks import METRIC_BY_KEY
    out: dict[str, float] = {}
    for part in text.split(","):
        key, _, value = part.rpartition("=")
        key = key.strip() or "*"
        if key != "*" and key not in METRIC_BY_KEY:
            raise argparse.ArgumentTypeError(f"{key!r} is no metric; valid: {', '.join(METRIC_BY_KEY)}")
        try:
            number = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{value.strip()!r} is not a number (e.g. 2 or smile_acc=1)") from None
        if not number > 0 or number == float("inf"):
            raise argparse.ArgumentTypeError(f"{number:g}: the effect must be a positive number")
        out[key] = number
    return out


def _format(args: argparse.Namespace) -> str:
    if args.format:
        if args.format == "table" and args.out:
            raise ConfigError("--format table is for the terminal; write md, csv, json, latex or html to --out")
        return args.format
    if args.out:
        return SUFFIXES.get(args.out.suffix.lower(), "md")
    return "table"


def _text(report: Report, fmt: str) -> str:
    """The report in one of tables.FORMATS; html from collect/html.py (matplotlib only when asked for)."""
    if fmt == "html":
        from ..collect.html import to_html
        return to_html(report)
    from ..collect.tables import render
    return render(report, fmt)


def _collect(args: argparse.Namespace) -> int:
    from ..collect.compare import build_report
    from ..collect.scan import load_runs
    from ..collect.tables import rich_report
    from ..fsio import atomic_write_text
    from .ui import stdout_console

    if args.workers is not None and args.workers < 1:
        raise ConfigError(f"--workers: must be >= 1, got {args.workers}")
    if args.write_resources is not None:
        if not args.right_size:
            raise ConfigError("--write-resources writes the --right-size proposal: add --right-size")
        from ..launch.study import load_experiments
        load_experiments(args.write_resources)   # a bad study file fails now, not after reading every run
    fmt = _format(args)
    runs = load_runs(args.root, args.select, args.workers)
    if runs.found == 0:
        print(f"{PROG}: no run folders under {args.root} (a run folder holds config.yaml or status.json)",
              file=sys.stderr)
        return EXIT_FAILED
    report = build_report(runs, args.stat, args.reference)
    if args.cost:
        from ..collect.cost import add_cost
        from ..launch.accounting import usage
        add_cost(report, runs.frame, usage)   # sacct's figures beside the runs' own, where it answers
    if not args.no_image_tests:
        from ..collect.image_tests import add_image_tests
        add_image_tests(report, runs.frame, predictions=PREDICTIONS_OF[args.select])
    notes = []
    if args.plots:
        from ..collect.plots import plot_curves
        written, plot_problems = plot_curves(report, args.plots)
        notes.append(f"wrote {len(written)} plots to {args.plots}")
        notes += [f"{p.path}: {p.state}: {p.reason}" for p in plot_problems]
    text = _text(report, fmt) if fmt != "table" else ""
    if args.out:
        atomic_write_text(args.out, text)
        notes.append(f"wrote {args.out} ({fmt})")
    if fmt == "table" or args.out:
        console = stdout_console()
        if not console.is_terminal:
            console.width = max(console.width, 200)   # piped: don't squeeze the table into 80 columns
        console.print(rich_report(report))
    else:
        sys.stdout.write(text)
        if fmt == "csv":   # CSV holds numbers only: say on stderr what it leaves out
            notes += [f"{'note' if p.counted else 'not in the table'}: {p.path}: {p.state}: {p.reason}"
                      for p in report.problems]
    if args.seeds_for:
        from ..collect.tables import seeds_lines
        lines = seeds_lines(report, args.seeds_for) or ["no Δ cell with a paired spread to size seeds from"]
        print("\n".join(["", "Seeds needed (80% power, paired t, two-sided α=0.05):", *lines]),
              file=sys.stdout if fmt == "table" or args.out else sys.stderr)
    if args.right_size:
        from ..collect.rightsize import WHY, proposal_line, proposals
        props = proposals(report, runs.frame)
        stream = sys.stdout if fmt == "table" or args.out else sys.stderr
        print("\n".join(["", WHY, *(proposal_line(p) for p in props)]), file=stream)
        if args.write_resources is not None:   # after the proposal: a refused write still leaves it on screen
            print("\n".join(_write_resources(args.write_resources, props, runs.frame)), file=stream)
    for line in notes:
        print(f"{PROG}: {line}", file=sys.stderr)
    return 0


def _write_resources(study: Path, props: list[Proposal], frame: pd.DataFrame) -> list[str]:
    """``--write-resources``: the proposals into the study file (launch/resize.py); what it did, as lines."""
    from ..launch.resize import RowProposal, write_resources
    runs = {str(r.path): (str(r.name), str(r.signature)) for r in frame.itertuples(index=False)}
    done = write_resources(study, [RowProposal(p.row, tuple(runs[x] for x in p.paths), p.timeout_min, p.new_mem_gb)
                                   for p in props])
    if not done.changes:
        why = ("already right-sized (no value to change)" if done.matched
               else "no row is a full run of one of its experiments")
        return [*done.notes, f"{study}: {why}; nothing written"]
    by_exp: dict[str, list[str]] = {}
    for c in done.changes:
        old = "(unset)" if c.old is None else f"{c.old:g}" if isinstance(c.old, (int, float)) else str(c.old)
        by_exp.setdefault(c.experiment, []).append(f"{c.key} {old} -> {c.new}")
    changed = "; ".join(f"{exp}: {', '.join(parts)}" for exp, parts in by_exp.items())
    return [*done.notes, f"wrote {study}: {changed}; previous file kept as {done.backup}"]


def collect_main(argv: Sequence[str] | None = None) -> int:
    """``mtl-collect``: returns the exit code (tests call this in-process)."""
    return run(PROG, argv, _args, _collect)


def entry_collect() -> None:
    sys.exit(collect_main())


if __name__ == "__main__":
    entry_collect()

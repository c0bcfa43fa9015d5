"""``mtl-data check``: what each dataset copy holds, per split, beside the release's counts; a thin adapter
over datacheck/check.py. Exit 0 when every copy matches, 1 when a count, a zero-byte or an unreadable file says
the copy is partial or wrong, 2 for bad input (via ``common.run``).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from rich.markup import escape
from rich.table import Table

from ..errors import EXIT_FAILED, ConfigError, DataError
from .common import run
from .ui import plain_console

if TYPE_CHECKING:
    from rich.progress import TaskID

    from ..datacheck.check import PartReport
    from ..datacheck.count import Part


def _args(p: argparse.ArgumentParser) -> None:
    from ..datacheck.check import SAMPLE
    from ..datasets import SOURCES

    p.description = ("check: per dataset and split, the images found, their labels' histogram, zero-byte and "
                     "unreadable files, and the counts the official release has; a wrong or partial copy exits 1. "
                     "The copies are those a study's runs read (experiments.yaml --cluster NAME: its data_root "
                     "and data keys) or every dataset under --data-root DIR.")
    p.add_argument("command", choices=["check"], help="what to do (check)")
    p.add_argument("experiments", nargs="?", type=Path,
                   help="the study's YAML (with --cluster): check the copies its runs read")
    p.add_argument("--cluster", help="cluster profile of experiments.yaml: its data_root")
    p.add_argument("--data-root", type=Path, metavar="DIR",
                   help="the data root to check (default with --cluster: the profile's data_root)")
    p.add_argument("--dataset", action="append", default=[], metavar="NAME",
                   help=f"only this dataset (repeatable): {', '.join(SOURCES)}")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a data key, e.g. --set data.chalearn_layout=official")
    p.add_argument("--full", action="store_true",
                   help=f"decode every image (default: {SAMPLE} per split, spread evenly; every file is "
                        f"counted and sized either way)")
    p.add_argument("--sample", type=int, default=SAMPLE, metavar="N", help="images decoded per split without --full")
    p.add_argument("--expect", type=Path, metavar="FILE",
                   help="YAML {copy: {split: count}} adding or replacing reference counts (e.g. your own "
                        "cleaned IMDB-WIKI tree: imdb_wiki_aligned: {train: N, val: M})")
    p.add_argument("--json", action="store_true", help="print the report as JSON (same exit codes)")


def _parts(args: argparse.Namespace) -> tuple[list[Part], list[Part]]:
    """(copies to check, copies absent) from the study's runs or from a data root."""
    from ..config import apply_overrides, train_config_from_dict
    from ..datacheck.check import dataset_key, parts_under
    from ..datacheck.count import parts_of

    if args.experiments is None and args.cluster is None:
        if args.data_root is None:
            raise ConfigError("nothing to check: give experiments.yaml --cluster NAME (the copies its runs read) "
                              "or --data-root DIR (every dataset under it)")
        cfg = train_config_from_dict(apply_overrides({"data": {"root": str(args.data_root)}}, args.overrides))
        return parts_under(cfg.data, args.dataset)
    from ..launch.grid import expand
    from ..launch.study import load_experiments

    exps = load_experiments(args.experiments or Path("experiments.yaml"))
    if not args.cluster:
        raise ConfigError(f"--cluster is required with {exps.path} (its data_root); valid: "
                          f"{', '.join(sorted(exps.clusters))}")
    prof = exps.cluster(args.cluster)
    root = str(args.data_root) if args.data_root else prof.data_root
    if not Path(root).expanduser().is_dir():
        where = "--data-root" if args.data_root else f"clusters.{prof.name}.data_root"
        raise DataError(f"{where} {root} does not exist on this host (run mtl-data where the data is, or give "
                        f"--data-root DIR)")
    wanted = {dataset_key(n) for n in args.dataset}
    parts = [p for spec in expand(exps, Path("results"), overrides=args.overrides, data_root=root)
             for p in parts_of(spec.config) if not wanted or p.dataset in wanted]
    if not parts:
        raise DataError(f"no run of {exps.path} reads dataset files"
                        + (f" of {', '.join(sorted(wanted))}" if wanted else "") + " (synthetic data?)")
    return list(dict.fromkeys(parts)), []


def _labels(labels: dict[str, dict[str, int]]) -> str:
    return "; ".join(f"{task}: " + ", ".join(f"{k} {v:,}" for k, v in hist.items()) for task, hist in labels.items())


def _table(r: PartReport) -> Table:
    caption = (f"reference: {r.reference.source} ({r.reference.counted})" if r.reference else
               "no reference count for this layout (--expect FILE adds one)")
    table = Table(title=escape(f"{r.part.name}: {r.part.path}"), title_justify="left", caption=escape(caption),
                  caption_justify="left")
    for col in ("split", "found", "reference", "zero-byte", "left out", "decoded", "unreadable", "labels"):
        table.add_column(col, overflow="fold")
    for s in r.splits:
        mark = "[green]✓[/]" if s.found == s.expected else "[red]✗[/]"
        ref = "" if s.expected is None else f"{s.expected:,} {mark}"
        table.add_row(escape(s.split), f"{s.found:,}", ref, f"{s.empty:,}", f"{s.left_out:,}", f"{s.checked:,}",
                      f"[red]{s.unreadable:,}[/]" if s.unreadable else "0", escape(_labels(s.labels)))
    return table


def _check(args: argparse.Namespace) -> int:
    from ..datacheck.check import REFERENCES, check, load_expectations

    if args.sample < 1:
        raise ConfigError(f"--sample: must be >= 1, got {args.sample}")
    parts, absent = _parts(args)
    references = {**REFERENCES, **load_expectations(args.expect)} if args.expect else REFERENCES
    out, err = plain_console(), plain_console(stderr=True)
    if args.full and err.is_terminal:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=err, transient=True) as bar:
            tasks: dict[str, TaskID] = {}

            def progress(what: str, done: int, total: int) -> None:
                if what not in tasks:
                    tasks[what] = bar.add_task(f"decoding {what}", total=total)
                bar.update(tasks[what], completed=done)
            report = check(parts, full=True, references=references, absent=absent, progress=progress)
    else:
        report = check(parts, full=args.full, sample=args.sample, references=references, absent=absent)
    if args.json:
        out.print_json(json.dumps(report.to_dict()))
        return 0 if report.ok else EXIT_FAILED
    for r in report.parts:
        out.print(_table(r))
        for s in r.splits:
            for line in s.unreadable_files:
                out.print(f"  unreadable ({s.split}): {line}", markup=False)
            if s.unreadable > len(s.unreadable_files):
                out.print(f"  ... and {s.unreadable - len(s.unreadable_files)} more", markup=False)
    for p in report.absent:
        out.print(f"not found, skipped: {p.name} at {p.path}", markup=False)
    problems = report.problems()
    checked = sum(len(r.splits) for r in report.parts)
    how = "every image decoded" if args.full else f"up to {args.sample} images decoded per split (--full: all)"
    if not problems:
        out.print(f"OK: {len(report.parts)} copies, {checked} splits; {how}", markup=False)
        return 0
    out.print(f"{len(problems)} problem(s); {how}:", markup=False)
    for line in problems:
        out.print(f"  ✗ {line}", markup=False)
    return EXIT_FAILED


def data_main(argv: Sequence[str] | None = None) -> int:
    """``mtl-data``."""
    return run("mtl-data", argv, _args, _check)


def entry_data() -> None:
    sys.exit(data_main())


if __name__ == "__main__":
    entry_data()

"""Thin command-line adapters: parse, call the library, map MtlError to one line and an exit code.

With the other modules of ``cli/``, the only modules that print or exit (tests/test_layers.py checks it).
Also the grid flags and the grid loading that ``mtl-launch`` and ``mtl-status`` share.
"""
from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Callable, NoReturn, Sequence

from ..errors import EXIT_FAILED, EXIT_USAGE, ConfigError, MtlError

if TYPE_CHECKING:
    from rich.console import Console

    from ..launch.clusters import ClusterProfile
    from ..launch.grid import RunSpec
    from ..launch.journal import Report
    from ..launch.study import Experiments

# Everything str.splitlines() breaks at: a message quoting user text (a key with a \r in it) stays one line.
_BREAKS = str.maketrans({c: repr(c)[1:-1] for c in "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"})


def one_line(text: str) -> str:
    """``text`` with line breaks shown escaped (``\\n``), so an error is always exactly one line."""
    return text.translate(_BREAKS)


class _UsageError(Exception):
    """A command-line mistake argparse found (unknown flag, missing value)."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one error line (argparse prints the usage block first)."""

    def error(self, message: str) -> NoReturn:
        raise _UsageError(message)


def run(prog: str, argv: Sequence[str] | None, build: Callable[[argparse.ArgumentParser], None],
         action: Callable[[argparse.Namespace], int]) -> int:
    parser = _Parser(prog=prog)
    build(parser)
    parser.add_argument("--traceback", action="store_true", help="show the Python stack on errors")
    try:
        args = parser.parse_args(argv)
    except _UsageError as exc:
        print(f"{prog}: error: {one_line(str(exc))} (see {prog} --help)", file=sys.stderr)
        return EXIT_USAGE
    try:
        return action(args)
    except MtlError as exc:
        if args.traceback:
            traceback.print_exc()
        print(f"{prog}: error: {one_line(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - a bug, not bad input: still one line unless asked
        if args.traceback:
            traceback.print_exc()
        print(f"{prog}: internal error: {type(exc).__name__}: {one_line(str(exc))} (rerun with --traceback for "
              f"the stack)", file=sys.stderr)
        return EXIT_FAILED


def grid_args(p: argparse.ArgumentParser, status: bool = False) -> None:
    """The flags mtl-launch and mtl-status share (``status``: worded for the one that only looks)."""
    p.add_argument("experiments", nargs="?", type=Path, default=Path("experiments.yaml"),
                   help="the study's YAML (default: experiments.yaml)")
    p.add_argument("--cluster", help="cluster profile of experiments.yaml (clusters:)")
    p.add_argument("--debug", action="store_true",
                   help="the debug grid's runs (synthetic data, the `debug:` overrides): give the launch's "
                        "--debug/--demo/--only/--set/--results again to see the runs it made" if status else
                        "the debug grid (synthetic data, the `debug:` overrides), run here; with --cluster: "
                        "submitted there")
    p.add_argument("--demo", action="store_true",
                   help="the demo: the debug grid with the `demo:` overrides on top (learns; scripts/demo.sh)")
    p.add_argument("--only", nargs="+", metavar="NAME", help="these experiments (and the runs they init from)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a training key for every run, e.g. --set epoch=2")
    p.add_argument("--results", type=Path, default=Path("results"), help="results root (default: results)")
    p.add_argument("--jobs-dir", type=Path, default=Path("jobs"), help="launch records (default: jobs)")


def grid_words(tool: str, args: argparse.Namespace, only: bool = True) -> list[str]:
    """``tool`` with every flag that picks the grid or its folders as ``args`` has them (--cluster,
    --debug/--demo, --only unless ``only`` is False, --set, --results, --jobs-dir): mtl-launch's follow-up hint,
    mtl-status's retry commands (which name their own experiments)."""
    words = [tool, str(args.experiments)]
    if args.cluster:
        words += ["--cluster", args.cluster]
    words += ["--demo"] if args.demo else ["--debug"] if args.debug else []
    words += ["--only", *args.only] if args.only and only else []
    for override in args.overrides:
        words += ["--set", override]
    for flag, value, default in (("--results", args.results, "results"), ("--jobs-dir", args.jobs_dir, "jobs")):
        if str(value) != default:
            words += [flag, str(value)]
    return words


def load_grid(args: argparse.Namespace) -> tuple[Experiments, ClusterProfile | None, list[RunSpec]]:
    """The study, its cluster profile (None only for a command that sets ``need_cluster`` False and got no
    --cluster nor --debug) and its runs, from the grid flags."""
    from ..launch.clusters import ClusterProfile
    from ..launch.grid import expand
    from ..launch.study import load_experiments

    exps = load_experiments(args.experiments)
    args.debug = args.debug or args.demo
    if args.cluster:
        prof = exps.cluster(args.cluster)        # --debug --cluster test: the debug grid on that cluster
    elif args.debug:
        prof = exps.clusters.get("local") or ClusterProfile(name="local", executor="local")
        if prof.is_slurm:
            raise ConfigError(f"{exps.path}: clusters.local: --debug runs here and needs executor: local")
    elif getattr(args, "need_cluster", True):
        raise ConfigError(f"--cluster is required (or --debug); valid: {', '.join(sorted(exps.clusters))}")
    else:
        prof = None
    specs = expand(exps, args.results, debug=args.debug, demo=args.demo, only=args.only,
                   overrides=args.overrides, data_root=prof.data_root if prof else None)
    return exps, prof, specs


def say_reconciled(report: Report, err: Console) -> None:
    """The journal's reconcile, one line per outcome (nothing when no launch was interrupted)."""
    if report.busy:
        err.print("note: a launch is in progress; its jobs show once it has recorded them", markup=False)
    for line in report.lines():
        err.print(f"journal: {line}", markup=False)

"""``mtl-train`` (and ``python -m mtl_cluster.train``): train one run, or a worker's runs read from stdin, in a
run folder; the parsing and the one-line errors are common.py's ``run``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from .common import run


def _train_args(p: argparse.ArgumentParser) -> None:
    p.description = ("Train one run (or resume it) in a run folder. Without --config: the default run "
                     "(config.DEFAULT_RUN), a multitask run on synthetic data.")
    p.add_argument("--config", type=Path,
                   help="YAML with training keys (a run folder's config.yaml works; default: the default run)")
    p.add_argument("--run-dir", type=Path,
                   help="run folder (default: results/<model>/<tag>/<name>_seed<seed>_<signature>)")
    p.add_argument("--results", type=Path, default=Path("results"), help="results root for the default run folder")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set epoch=2 --set data.root=/scratch/data")
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    p.add_argument("--worker", action="store_true",
                   help="train the runs named on stdin, one JSON line each ({\"config\": FILE, \"run_dir\": DIR}), "
                        "one after the other in this process (mtl-launch runs local grids so: torch loads once)")


def _work(args: argparse.Namespace) -> int:
    """``mtl-train --worker``: each stdin line is one run, trained exactly as ``mtl-train --config FILE --run-dir
    DIR`` would in a fresh process (tests/test_launch_local.py compares the bytes). Stops after a run that was
    interrupted (Ctrl-C, SIGTERM, SIGUSR2): the stop is for the whole worker, as it is for a job."""
    import contextlib
    import io
    import json

    from ..errors import EXIT_INTERRUPTED, WORKER_DONE
    from ..signals import pending

    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        argv = ["--config", str(req["config"]), "--run-dir", str(req["run_dir"])]
        with contextlib.redirect_stdout(io.StringIO()):   # the summary table: the launcher shows its own
            rc = train_main(argv + (["--traceback"] if args.traceback else []))
        print(WORKER_DONE + json.dumps({"rc": rc}), file=sys.stderr, flush=True)
        if rc in (EXIT_INTERRUPTED, 130) or pending() is not None:
            return rc
    return 0


def _train(args: argparse.Namespace) -> int:
    import yaml

    from ..config import load_train_config, signature
    from ..rundir import default_run_dir
    from ..runlock import lock_run_folder
    from .ui import EpochPrinter, setup_logging, stderr_console, stdout_console, summary_table

    if args.worker:
        return _work(args)
    cfg = load_train_config(args.config, args.overrides)
    if args.print_config:
        print(yaml.safe_dump({"signature": signature(cfg), **cfg.to_dict()}, sort_keys=False), end="")
        return 0
    run_dir = args.run_dir or default_run_dir(args.results, cfg)
    setup_logging()
    with lock_run_folder(run_dir) as lock:   # before torch loads: a second trainer here is refused at once
        from ..train.loop import run_training  # torch is imported only once the config is known good

        printer = EpochPrinter(stderr_console(), cfg.epoch)
        try:
            summary = run_training(cfg, run_dir, progress=printer, lock=lock)
        finally:
            printer.close()
    out = stdout_console()
    out.print(summary_table(summary))
    out.print(f"run folder: {run_dir}")
    return 0


def train_main(argv: Sequence[str] | None = None) -> int:
    """``mtl-train`` / ``python -m mtl_cluster.train``."""
    return run("mtl-train", argv, _train_args, _train)


def entry_train() -> None:
    from ..signals import install_early

    install_early()   # first thing: a time-limit signal while torch loads must not kill the process
    sys.exit(train_main())

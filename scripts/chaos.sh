#!/usr/bin/env bash
# The chaos soak (tests/chaos.py) on the local SLURM, started here if needed:
#   bash scripts/chaos.sh --seed N --minutes M [--steps S] [--root DIR] [--json FILE]
# injects random faults for M minutes into a 12-run grid, relaunches until it is complete, checks that nothing
# was lost or doubled and prints the tally (exit 1 on a failed check). The README's test command runs a short
# one (tests/test_chaos.py); RELIABILITY.md keeps a table of longer ones.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
bash scripts/slurm_local.sh start
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
exec .venv/bin/python tests/chaos.py "$@"

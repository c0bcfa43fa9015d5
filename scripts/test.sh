#!/usr/bin/env bash
# Set up everything the tests need on a fresh machine (.venv with the package, the local one-node
# SLURM with accounting and fake GPUs, Chromium for the HTML report's test), then the lint and type gate and
# the whole suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
bash scripts/slurm_local.sh start
bash scripts/setup_browser.sh
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
export MTL_REQUIRE_SLURM=1   # the cluster was just started: a SLURM test that cannot reach it fails
export MTL_REQUIRE_BROWSER=1 # Chromium was just installed: a browser test that cannot start it fails
echo "test: lint (ruff) and types (mypy) on mtl_cluster/" >&2
.venv/bin/ruff check mtl_cluster
.venv/bin/mypy mtl_cluster
exec .venv/bin/python -m pytest "$@"

#!/usr/bin/env bash
# Set up everything the tests need on a fresh machine (.venv with the package, the local one-node
# SLURM with accounting and fake GPUs), then the lint and type gate and the whole suite. Extra arguments go
# to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
bash scripts/slurm_local.sh start
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
export MTL_REQUIRE_SLURM=1   # the cluster was just started: a SLURM test that cannot reach it fails
echo "test: lint (ruff) and types (mypy) on mtl_cluster/" >&2
.venv/bin/ruff check mtl_cluster
.venv/bin/mypy mtl_cluster
exec .venv/bin/python -m pytest "$@"

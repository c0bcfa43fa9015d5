#!/usr/bin/env bash
# The main job on the embedded default: set up, run the study's debug grid here (synthetic data, tiny
# images, no SLURM, a couple of minutes on 2 CPU cores), then print the comparison table.
# Idempotent: a second call skips the completed runs and prints the table again.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
.venv/bin/mtl-launch experiments.yaml --debug "$@"
exec .venv/bin/mtl-collect results

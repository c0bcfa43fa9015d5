#!/usr/bin/env bash
# The main job on the embedded default: set up, run the study's grid here as the demo (the debug grid with
# experiments.yaml's `demo:` overrides: synthetic data with a planted answer, 64 px, two seeds, no SLURM, two
# runs at a time), then print the comparison table. Idempotent: a second call skips the completed runs and
# prints the table again; after a Ctrl-C it resumes the interrupted runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
.venv/bin/mtl-launch experiments.yaml --demo --parallel "${MTL_PARALLEL:-2}" "$@"
exec .venv/bin/mtl-collect results

#!/usr/bin/env bash
# The known-answer study at full size (8 seeds, here, no Slurm; about 15 minutes on 2 CPU cores): does the
# pipeline find the multitask effect planted in the synthetic data, and no effect where none was planted?
# Prints the table (its Δ rows carry the verdicts) and writes the validation curves under
# results_known_answer/plots/. Figures: STUDIES.md. Idempotent: a second call only collects again.
# Extra arguments go to mtl-launch (e.g. --cluster test for the local Slurm).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
results=results_known_answer
args=("$@")
[[ " ${args[*]} " == *" --cluster "* ]] || args+=(--cluster local)
.venv/bin/mtl-launch studies/known_answer.yaml --results "$results" --jobs-dir jobs/known_answer \
  --logs-dir logs/known_answer "${args[@]}"
exec .venv/bin/mtl-collect "$results" --plots "$results/plots"

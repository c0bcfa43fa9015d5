#!/usr/bin/env bash
# The main job on the embedded default: set up, run the study's grid here as the demo (the debug grid with
# experiments.yaml's `demo:` overrides: synthetic data with a planted answer, 64 px, two seeds, no SLURM, two
# runs at a time), then print the comparison table. Idempotent: a second call skips the completed runs and
# prints the table again; after a Ctrl-C it resumes the interrupted runs.
# Extra arguments go to mtl-launch; a --results folder is also the one the table is collected from, e.g. the
# longer demo: bash scripts/demo.sh --set epoch=8 --results results_320 (BENCHMARKS.md, "The longer demo").
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
results=results
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[i]}" in
    --results) results="${args[i + 1]:-$results}" ;;
    --results=*) results="${args[i]#--results=}" ;;
  esac
done
.venv/bin/mtl-launch experiments.yaml --demo --parallel "${MTL_PARALLEL:-2}" "$@"
exec .venv/bin/mtl-collect "$results"

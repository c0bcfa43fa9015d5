#!/usr/bin/env bash
# The main job on the embedded default: set up, then a short multitask run on synthetic data (CPU ok).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
exec .venv/bin/mtl-train "$@"

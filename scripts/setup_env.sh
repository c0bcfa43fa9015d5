#!/usr/bin/env bash
# Create .venv and install mtl_cluster with its test extra. Idempotent: a second call takes seconds.
# torch/torchvision come from pip's own resolution of setup.py's ranges (on the group's machines the
# capped, locally cached 2.14.1/0.29.1); never uv/poetry, which would download gigabytes.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

if ! "$PY" -c 'import venv, ensurepip' 2>/dev/null; then
  echo "setup: $PY lacks venv/ensurepip; installing python3-venv" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
fi
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.mtl_installed
if [ ! -f "$stamp" ] || [ setup.py -nt "$stamp" ]; then
  echo "setup: installing mtl_cluster and its dependencies into .venv (first time: about a minute)" >&2
  .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
  touch "$stamp"
fi

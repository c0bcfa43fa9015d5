#!/usr/bin/env bash
# The fault matrix of RELIABILITY.md: runs tests/test_faults.py against the local SLURM (started here if
# needed) and prints the table; with --write it also replaces the table in RELIABILITY.md.
# The README's test command runs the same tests as part of the suite and prints the same table at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
write=0
[[ ${1:-} == --write ]] && write=1
bash scripts/setup_env.sh
bash scripts/slurm_local.sh start
rows=$(mktemp)
trap 'rm -f "$rows"' EXIT
status=0
OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} MTL_REQUIRE_SLURM=1 MTL_FAULT_MATRIX=$rows \
    .venv/bin/python -m pytest tests/test_faults.py -q -p no:cacheprovider || status=$?
.venv/bin/python - "$rows" "$write" <<'PY'
import json, platform, subprocess, sys, time
sys.path.insert(0, "tests")
from faultmatrix import Row, render
text = open(sys.argv[1]).read().strip()
rows = [Row(**r) for r in json.loads(text)] if text else []
table = render(rows)
print(table)
if sys.argv[2] == "1" and rows:
    slurm = subprocess.run(["sinfo", "--version"], capture_output=True, text=True).stdout.strip()
    stamp = f"Measured {time.strftime('%Y-%m-%d')} on {platform.node()} ({slurm}, scripts/slurm_local.sh).\n\n"
    doc = open("RELIABILITY.md").read()
    start, end = "<!-- fault-matrix -->\n", "<!-- /fault-matrix -->"
    head, rest = doc.split(start, 1)
    doc = head + start + stamp + table + rest[rest.index(end):]
    open("RELIABILITY.md", "w").write(doc)
    print("RELIABILITY.md updated")
PY
exit $status

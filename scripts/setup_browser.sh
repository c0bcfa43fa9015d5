#!/usr/bin/env bash
# Chromium from Debian's packages, for the HTML report's browser test (tests/test_report_html.py).
# Idempotent: returns at once when a Chromium is already on PATH (or MTL_BROWSER names one). The first time it
# runs apt-get as root (sudo when not root): on Debian 12 about 110 MB downloaded, 480 MB on disk, under a minute.
set -euo pipefail
for b in ${MTL_BROWSER:-} chromium chromium-browser google-chrome google-chrome-stable; do
  if command -v "$b" >/dev/null 2>&1; then
    exit 0
  fi
done
if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup: no Chromium and no apt-get: install Chromium (or set MTL_BROWSER) for the browser test" >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" != 0 ]; then
  sudo="sudo"
fi
echo "setup: installing chromium with apt-get (first time: about a minute)" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
command -v chromium >/dev/null

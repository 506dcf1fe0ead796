#!/usr/bin/env bash
# The peers bench/run.py compares statewall with, in the same run. They are
# the benchmark's own dependencies, never the package's.
set -euo pipefail
python3 -m pip install -q nfstream
if ! command -v tshark >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tshark >/dev/null
fi

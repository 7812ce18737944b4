#!/usr/bin/env bash
# P3 discovery calibration, long version (issue #11): false-positive rate of cross-state
# edges and feedback loops on null data, and power on a planted lagged loop, at the P3
# experiments' size (5 states, 32 sessions x 48 steps). The CI test runs 200 runs without the
# bootstrap; this runs LANTERN_CALIBRATION_RUNS (default 1000) and prints the rates.
#   scripts/p3-calibration.sh [RUNS]   # output: figures/p3/calibration.txt
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-1000}"
mkdir -p figures/p3
LANTERN_CALIBRATION_RUNS="$runs" RAYON_NUM_THREADS=1 \
  cargo test -q -p lantern-causal --test recovery -- --nocapture --test-threads 1 2>&1 \
  | sed -E "s/^\.+//" | grep -E "^(white noise|AR\(1\)|old defaults|planted loop|defaults with)|test result" \
  | tee figures/p3/calibration.txt

#!/usr/bin/env bash
# Benchmark of the Python binding (issue #14): run_with_cache of every hook point, 16 x 16
# tokens, from Python vs from Rust (same dev profile, same ids), alternating, in one run.
# Needs the package installed in target/pyenv (scripts/test-python.sh).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
export LANTERN_MODEL_DIR="${LANTERN_MODEL_DIR:-$PWD/models}"
cargo build -q -p lantern-py --example bench_cache
echo "$(lscpu | grep 'Model name'); load: $(uptime | sed 's/.*load average: //')"
for round in 1 2; do
  target/debug/examples/bench_cache
  target/pyenv/bin/python scripts/bench/python_cache.py
done

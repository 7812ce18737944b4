#!/usr/bin/env bash
# Regenerates every P1/P2 result and figure under figures/ from the experiment files. Long: on
# 2 shared AMD EPYC cores, P1 on SmolLM2-135M took 34 min and P2 framing 16 min; Gemma 3 270M
# is slower (larger vocabulary), and the flight experiments (10 players, 2 orders, 3 templates)
# take longer than framing: budget several hours for the whole set. Deterministic under the
# seeds in the files. Usage: scripts/figures.sh [MODEL_TAG...]  (default: every tag below)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p lantern-cli
tags=("${@:-smollm2-135m gemma3-270m}")
for tag in ${tags[@]}; do
  for exp in p1_paper p2_paper_framing p2_paper_flight; do
    file="experiments/${exp}_${tag}.toml"
    [ -f "$file" ] || { echo "skip: no $file"; continue; }
    echo "== $file"
    /usr/bin/time -v target/release/lantern experiment "$file" 2>&1 | grep -E "Elapsed|Maximum resident" || true
  done
done

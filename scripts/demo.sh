#!/usr/bin/env bash
# The main job on the real model: fetch SmolLM2-135M-Instruct (cached), then show the next-token
# distribution and the logit lens of "The capital of France is".
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
model="$(scripts/fetch-model.sh)"
prompt="${1:-The capital of France is}"
cargo build -q -p lantern-cli
./target/debug/lantern run "$model" --prompt "$prompt" --top-k 10 --quiet
echo
./target/debug/lantern lens "$model" --prompt "$prompt" --track " Paris" --quiet

#!/usr/bin/env bash
# The real-model parity checks that are too big for CI: Qwen2.5-Coder-1.5B (1.1 GB GGUF, ~6 GB of
# f32 weights in memory) against transformers' logits and token ids (tests/fixtures/real_parity),
# plus the checks CI runs for the smaller models. Fetches what is missing into LANTERN_MODEL_DIR
# (default <repo>/models). Prints each model's max |Δlogit| and load time.
#
#   scripts/check-real-parity.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export LANTERN_MODEL_DIR="${LANTERN_MODEL_DIR:-$PWD/models}"
export RAYON_NUM_THREADS="${RAYON_NUM_THREADS:-2}"
scripts/fetch-model.sh qwen2.5-coder-1.5b >/dev/null
cargo test -p lantern-engine --test real_model -- --include-ignored --test-threads=1 --nocapture \
  real_models_tokenize qwen2_5_coder

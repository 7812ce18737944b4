#!/usr/bin/env bash
# The Python package (`import lantern`, crates/lantern-py) and the notebooks: builds the
# extension with the dev profile into the workspace's target/ (so it reuses the dependencies
# `cargo test` has just built instead of a fresh release build), installs it into a virtual
# environment (target/pyenv), runs pytest on tests/python/ (which also executes the notebooks
# headless). Run by scripts/test.sh; on its own it needs the `lantern` binary
# (cargo build -p lantern-cli) and the model (scripts/fetch-model.sh).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export LANTERN_MODEL_DIR="${LANTERN_MODEL_DIR:-$PWD/models}"
export RAYON_NUM_THREADS="${RAYON_NUM_THREADS:-2}"
python="${LANTERN_PYTHON:-python3}"
venv=target/pyenv
# System site packages: whatever is installed already (numpy, pandas, ...) is not fetched again.
[ -x "$venv/bin/python" ] || "$python" -m venv --system-site-packages "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt
start=$(date +%s)
MATURIN_PEP517_ARGS="--profile dev" "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
  --no-build-isolation --no-deps --force-reinstall ./crates/lantern-py
echo "== lantern-py built and installed in $(( $(date +%s) - start )) s"
"$venv/bin/python" -m ipykernel install --sys-prefix --name python3 >/dev/null
"$venv/bin/python" -m pytest -q tests/python "$@"

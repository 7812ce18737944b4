"""Shared fixtures: the real SmolLM2 (from $LANTERN_MODEL_DIR, as scripts/test.sh sets it) and
the `lantern` CLI built by `cargo build` (the reference the Python results are compared with)."""

import json
import os
import pathlib
import subprocess

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
os.environ.setdefault("LANTERN_MODEL_DIR", str(REPO / "models"))
os.environ.setdefault("RAYON_NUM_THREADS", "2")


@pytest.fixture(scope="session")
def lm():
    import lantern

    return lantern.load(quiet=True)


@pytest.fixture(scope="session")
def cli():
    """Runs the `lantern` binary (LANTERN_BIN, else target/debug/lantern) and parses --json."""
    binary = pathlib.Path(os.environ.get("LANTERN_BIN", REPO / "target/debug/lantern"))
    assert binary.is_file(), f"{binary} is missing: build it with `cargo build -p lantern-cli`"

    def run(*args, parse=True):
        out = subprocess.run(
            [str(binary), *args, "--quiet"], capture_output=True, text=True, check=False
        )
        assert out.returncode == 0, f"lantern {' '.join(args)} failed:\n{out.stderr}"
        return json.loads(out.stdout) if parse else out.stdout

    return run

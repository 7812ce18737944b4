"""Executes the Python notebooks headless (nbclient, no network) and fails on any error."""

import pathlib

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((pathlib.Path(__file__).resolve().parents[2] / "notebooks").glob("python_*.ipynb"))


def test_there_are_python_notebooks():
    assert NOTEBOOKS, "no notebooks/python_*.ipynb"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path):
    nb = nbformat.read(path, as_version=4)
    # Figures render with matplotlib's inline backend; errors in any cell raise here.
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    images = sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert images >= 5, f"{path.name}: expected the figures inline, found {images}"

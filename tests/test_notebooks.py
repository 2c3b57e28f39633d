"""Every notebook runs top to bottom in SMOKE mode (tiny model, seconds), as CI runs it."""

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))
# Notebooks that train and must leave a run directory under WORKBENCH_RUNS; the others only read runs.
TRAINS = {"01_grpo_qlora_quickstart.ipynb", "04_r1_pipeline_vs_r1_zero.ipynb", "05_aha_moment_in_miniature.ipynb"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_in_smoke_mode(path, tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_SMOKE", "1")
    monkeypatch.setenv("WORKBENCH_RUNS", str(tmp_path / "runs"))
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    if path.name in TRAINS:
        assert any(Path(tmp_path, "runs").iterdir()), "the notebook's run left no run directory"

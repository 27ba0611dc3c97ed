"""Every notebook runs top to bottom in its tiny settings (MINIBERT_TINY=1) on a CPU, and is stored without outputs.

Each notebook runs in a fresh `python3` kernel of this interpreter with the repository on PYTHONPATH and
matplotlib's non-interactive backend; all of them together take a few minutes on 2 CPU cores (README, Notebooks).
Progress bars stay on, so that tqdm.auto's widget bars are checked to render (ipywidgets installed).
"""

import os
import sys
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
CELL_TIMEOUT_S = 300


def test_there_is_a_notebook_per_paper():
    assert [p.name[:2] for p in NOTEBOOKS] == [f"{i:02d}" for i in range(1, 15)]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_outputs_are_stripped(path):
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: strip the outputs before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_first_cell_states_the_settings(path):
    first = nbformat.read(path, as_version=4).cells[0]
    assert first.cell_type == "markdown" and "**Settings.**" in first.source, \
        f"{path.name}: the first cell states the tiny and full settings (README, Notebooks)"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_in_tiny_settings(path, monkeypatch):
    monkeypatch.setenv("MINIBERT_TINY", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=CELL_TIMEOUT_S, kernel_name="python3",
                                     resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    client.execute()   # raises CellExecutionError, with the cell and its traceback, on the first failing cell
    print(f"{path.name}: {time.perf_counter() - start:.1f} s", file=sys.stderr)
    stderr = "".join(out.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
                     for out in cell.outputs if out.output_type == "stream" and out.name == "stderr")
    assert "IProgress not found" not in stderr, f"{path.name}: tqdm.auto fell back to text bars (ipywidgets missing)"

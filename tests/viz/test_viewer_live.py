"""A live kernel (JPY_SESSION_NAME set) runs the cells after the volume viewer: the offline viewer
never holds the kernel (itkwidgets, waiting for JavaScript from the internet, did)."""
from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_a_cell_after_the_viewer_finishes_in_a_live_kernel(tmp_path, monkeypatch):
    papermill = pytest.importorskip("papermill")
    nb = nbformat.read(ROOT / "notebooks" / "00_data_tour.ipynb", as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell('print("ran after the viewer:", type(viewer).__name__)'))
    source = tmp_path / "00_live.ipynb"
    nbformat.write(nb, source)
    monkeypatch.setenv("JPY_SESSION_NAME", str(source))  # what JupyterLab sets in a live kernel
    monkeypatch.delenv("MEDKIT_NO_WIDGETS", raising=False)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    out = tmp_path / "out.ipynb"
    papermill.execute_notebook(str(source), str(out), cwd=str(ROOT / "notebooks"), progress_bar=False,
                               execution_timeout=300, kernel_name="python3")
    last = json.loads(out.read_text())["cells"][-1]
    text = "".join("".join(o.get("text", "")) for o in last["outputs"])
    assert "ran after the viewer: VolumeViewer" in text

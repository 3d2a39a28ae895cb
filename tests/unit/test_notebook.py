"""notebooks/text_generation.ipynb runs top to bottom (small sizes) and matches its jupytext pair."""

from __future__ import annotations

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
jupytext = pytest.importorskip("jupytext")
from nbclient import NotebookClient  # noqa: E402

pytestmark = pytest.mark.notebook
ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "text_generation.ipynb"
PAIRED = NOTEBOOK.with_suffix(".py")


def test_the_notebook_and_its_py_file_hold_the_same_cells() -> None:
    stored = nbformat.read(NOTEBOOK, as_version=4)
    paired = jupytext.read(PAIRED)
    assert [(c.cell_type, c.source) for c in stored.cells] == [(c.cell_type, c.source) for c in paired.cells]


def test_the_committed_notebook_carries_the_outputs_of_a_full_run() -> None:
    stored = nbformat.read(NOTEBOOK, as_version=4)
    text = "".join(o.get("text", "") for c in stored.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "size: full" in text
    assert any("image/png" in o.get("data", {}) for c in stored.cells if c.cell_type == "code"
               for o in c.get("outputs", []))


def test_the_notebook_runs_top_to_bottom_with_small_sizes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORYBOT_NOTEBOOK_SIZE", "small")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    # A busy machine may take over a minute to start a kernel (nbclient waits 60 s by default).
    client = NotebookClient(notebook, timeout=300, startup_timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(ROOT)}})
    client.execute()
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs)
    assert "size: small" in text
    assert "held-out perplexity:" in text and "unattended run" in text
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 3  # sweep, LSTM curves, fine-tuning loss

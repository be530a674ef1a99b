"""Keep the notebooks honest: numbered, lecture-shaped, seeded, short cells, executed top to bottom."""
from __future__ import annotations

import base64
import re
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
MAX_CODE_LINES = 15
MAX_FIGURE_BYTES = 120_000
SECTIONS = ("## Goals", "## Summary", "## Exercises", "## Further reading")


def _code(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 10


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
class TestNotebook:
    def test_numbered_name(self, path):
        assert re.fullmatch(r"\d{2}_[a-z0-9_]+\.ipynb", path.name)

    def test_skeleton_and_citation(self, path):
        nb = nbformat.read(path, as_version=4)
        text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
        assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
        for section in SECTIONS:
            assert section in text, f"{path.name} lacks a '{section}' section"
        assert "2509.23051" in text, f"{path.name} does not cite the paper"

    def test_markdown_before_every_code_cell(self, path):
        nb = nbformat.read(path, as_version=4)
        for prev, cell in zip(nb.cells, nb.cells[1:]):
            if cell.cell_type == "code":
                assert prev.cell_type == "markdown", f"code cell without markdown before it:\n{cell.source[:200]}"

    def test_short_code_cells(self, path):
        nb = nbformat.read(path, as_version=4)
        for cell in _code(nb):
            assert len(cell.source.splitlines()) <= MAX_CODE_LINES, f"cell over {MAX_CODE_LINES} lines:\n{cell.source}"

    def test_seed_in_setup_cell(self, path):
        nb = nbformat.read(path, as_version=4)
        assert "seed_everything(" in _code(nb)[0].source

    def test_executed_once_top_to_bottom_without_errors(self, path):
        nb = nbformat.read(path, as_version=4)
        counts = [c.execution_count for c in _code(nb)]
        assert counts == list(range(1, len(counts) + 1)), f"execution counts {counts}: run `make notebooks`"
        for cell in _code(nb):
            assert not any(o.output_type == "error" for o in cell.outputs)

    def test_small_figures(self, path):
        nb = nbformat.read(path, as_version=4)
        for cell in _code(nb):
            for out in cell.outputs:
                png = out.get("data", {}).get("image/png")
                if png:
                    assert len(base64.b64decode(png)) <= MAX_FIGURE_BYTES

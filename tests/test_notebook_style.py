"""Keep the notebooks honest: numbered, lecture-shaped, seeded, short cells, executed top to bottom."""
from __future__ import annotations

import base64
import re
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
MAX_CODE_LINES = 15
# Raised from 120 kB for the readable figure style of interface/viz.py (DPI 100, 230 px image panels): three
# rows of photo explanations take about 350 kB, four about 460 kB, a 3x7 mask grid of shapes about 130 kB.
# MAX_NOTEBOOK_BYTES keeps the notebooks themselves small.
MAX_FIGURE_BYTES = 500_000
MAX_NOTEBOOK_BYTES = 1_000_000
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

    def test_small_notebook(self, path):
        assert path.stat().st_size <= MAX_NOTEBOOK_BYTES, f"{path.name}: {path.stat().st_size} bytes"

    def test_small_figures(self, path):
        nb = nbformat.read(path, as_version=4)
        for cell in _code(nb):
            for out in cell.outputs:
                for kind in ("image/png", "image/jpeg"):
                    data = out.get("data", {}).get(kind)
                    if data:
                        assert len(base64.b64decode(data)) <= MAX_FIGURE_BYTES, f"a {kind} figure over the limit"


# -- the figure style of interface/viz.py: readable at display size (one PNG pixel per screen pixel) --------
def _figures():
    import matplotlib
    matplotlib.use("Agg")
    import numpy as np
    import torch

    from actmatch_lite.interface import viz
    x, m_soft = torch.rand(3, 3, 224, 224), torch.rand(3, 1, 224, 224)
    return viz, {
        "show_images": viz.show_images(list(x), ["a", "b", "c"]),
        "show_explanations": viz.show_explanations(x, m_soft, m_soft > 0.5, x),
        "show_masks": viz.show_masks(m_soft > 0.5, ["a", "b", "c"]),
        "show_instances": viz.show_instances(x[0], [m_soft[0] > 0.5, m_soft[0] < 0.2]),
        "show_mask_grid": viz.show_mask_grid(x, {"a": m_soft > 0.5, "b": m_soft > 0.7}),
        "show_kept_grid": viz.show_kept_grid(x, {"a": m_soft > 0.5, "b": m_soft > 0.7}, ["r1", "r2", "r3"]),
        "plot_history": viz.plot_history({"ce": [1.0, 0.5], "area": [0.4, 0.2]}),
        "plot_bars": viz.plot_bars({"s": [1, 2]}, ["g1", "g2"], "y", title="t"),
        "plot_curves": viz.plot_curves([1, 2], {"s": [1, 2]}, "x", "y", title="t"),
        "plot_heatmap": viz.plot_heatmap(np.ones((2, 2)), ["r1", "r2"], ["c1", "c2"], title="t"),
        "show_activations": viz.show_activations({"conv1": torch.rand(6, 8, 8)}),
    }


def test_every_viz_figure_has_readable_text_and_tall_photo_panels():
    import matplotlib.pyplot as plt
    from matplotlib.text import Text

    viz, figures = _figures()
    for name, fig in figures.items():
        fig.canvas.draw()
        assert fig.dpi == viz.DPI, name
        sizes = [t.get_fontsize() for t in fig.findobj(Text) if t.get_text().strip()]
        assert sizes and min(sizes) * fig.dpi / 72 >= 12, f"{name}: text under 9 pt at display size ({min(sizes)})"
        if name.startswith("show_") and name != "show_activations":
            for ax in fig.axes:
                if ax.images:
                    height = ax.get_window_extent().height
                    assert height >= 220, f"{name}: a {height:.0f} px image panel"
        assert fig.get_size_inches()[0] <= viz.MAX_WIDTH_INCHES + 0.5, name
        plt.close(fig)


def test_kept_grid_shows_the_kept_pixels_on_grey_and_converts_to_jpeg():
    import matplotlib.pyplot as plt
    import torch

    from actmatch_lite.interface import viz
    x = torch.rand(2, 3, 32, 32)
    m = torch.zeros(2, 1, 32, 32, dtype=torch.bool)
    m[..., :8, :8] = True
    fig = viz.show_kept_grid(x, {"ours": m})
    shown = fig.axes[1].images[0].get_array()
    assert abs(float(shown[20, 20, 0]) - 0.5) < 0.02 and abs(float(shown[2, 2, 0]) - float(x[0, 0, 2, 2])) < 0.02
    assert fig.axes[1].get_title() == "ours 6.2 %"
    img = viz.as_jpeg(fig)
    assert img.format == "jpeg" and img.data[:2] == b"\xff\xd8" and not plt.fignum_exists(fig.number)


def test_masks_share_one_colour_map():
    import matplotlib.pyplot as plt

    viz, figures = _figures()
    fig = figures["show_explanations"]
    soft, hard = fig.axes[1].images[0], fig.axes[2].images[0]
    assert soft.get_cmap().name == hard.get_cmap().name == viz.MASK_CMAP
    assert figures["show_masks"].axes[0].images[0].get_cmap().name == viz.MASK_CMAP
    for f in figures.values():
        plt.close(f)

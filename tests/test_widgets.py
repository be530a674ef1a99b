"""The explorer behind the notebooks' sliders: pure functions first, then the widget object."""
from __future__ import annotations

import dataclasses

import matplotlib

matplotlib.use("Agg")

import pytest
import torch
from matplotlib.figure import Figure
from torch import nn

from actmatch_lite import ExplainConfig, load_model
from actmatch_lite.interface.widgets import WeightExplorer, explore_weights, render_explanation, threshold_mask

FAST = ExplainConfig(lambda_act=0.0, lambda_rob=0.0, steps=3, lr=1e-3)


class Halves(nn.Module):
    """Logits = (mean of the left half, mean of the right half) of channel 0, times 10."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(10.0))

    def forward(self, x):
        w = x.shape[-1] // 2
        return self.scale * torch.stack([x[:, 0, :, :w].mean((1, 2)), x[:, 0, :, w:].mean((1, 2))], 1)


def test_threshold_mask_cuts_fills_and_scores():
    clf = Halves()
    x = torch.ones(1, 1, 4, 4)
    soft = torch.zeros(1, 1, 4, 4)
    soft[..., :2] = 0.8            # the left half is kept at thresholds below 0.8
    soft[..., 2:] = 0.3
    target = torch.tensor([0])
    low = threshold_mask(clf, x, soft, target, 0.2, fill="zero")
    high = threshold_mask(clf, x, soft, target, 0.5, fill="zero")
    assert torch.equal(low.area, torch.tensor([1.0])) and torch.equal(high.area, torch.tensor([0.5]))
    assert torch.equal(high.explanation[..., 2:], torch.zeros(1, 1, 4, 2))
    assert torch.allclose(low.prob, torch.tensor([0.5]))                       # both halves bright
    assert torch.allclose(high.prob, torch.softmax(torch.tensor([10.0, 0.0]), 0)[:1])
    assert clf.training and clf.scale.requires_grad                              # handed back unchanged


def test_threshold_mask_uses_the_models_mean_fill():
    model = load_model("shapes-cnn", device="cpu")
    x = torch.rand(1, 3, 32, 32)
    cut = threshold_mask(model, x, torch.zeros(1, 1, 32, 32), torch.tensor([0]), 0.5)
    assert torch.allclose(cut.explanation[0, :, 0, 0], torch.tensor(model.mean))


def test_explorer_caches_and_draws():
    model = load_model("shapes-cnn", device="cpu")
    x = torch.rand(1, 3, 32, 32)
    explorer = WeightExplorer(model, x, config=FAST)
    first = explorer.explanation(5.0, 1.0)
    assert explorer.explanation(5, 1) is first                          # cached per (λ_area, λ_tv)
    assert first.config == dataclasses.replace(FAST, lambda_area=5.0, lambda_tv=1.0)
    fig = explorer.figure(5.0, 1.0, threshold=0.3)
    assert isinstance(fig, Figure) and len(fig.axes) == 4
    assert "λ_area=5" in fig._suptitle.get_text() and "threshold=0.30" in fig._suptitle.get_text()
    again = render_explanation(model, x, 5.0, 1.0, 0.3, explorer=explorer)
    assert isinstance(again, Figure) and len(explorer._cache) == 1


def test_render_explanation_defaults_to_the_config_weights():
    clf = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.AdaptiveMaxPool2d(1), nn.Flatten())
    x = torch.rand(2, 1, 8, 8)
    cfg = dataclasses.replace(FAST, mean=(0.5,))   # a plain module has no mean colour for the "mean" fill
    explorer = WeightExplorer(clf, x, config=cfg)
    fig = render_explanation(clf, x, explorer=explorer)
    assert (FAST.lambda_area, FAST.lambda_tv) in explorer._cache
    assert len(fig.axes) == 8                                           # two rows of four panels


def test_plain_module_needs_a_config():
    with pytest.raises(ValueError, match="config"):
        WeightExplorer(nn.Linear(2, 2), torch.rand(1, 1, 2, 2))


def test_explore_weights_builds_the_widget():
    ipywidgets = pytest.importorskip("ipywidgets")
    model = load_model("shapes-cnn", device="cpu")
    ui = explore_weights(model, torch.rand(1, 3, 32, 32), config=FAST, render=False)
    assert isinstance(ui, ipywidgets.interactive)
    sliders = {c.description: c for c in ui.children if hasattr(c, "value") and hasattr(c, "description")}
    assert set(sliders) >= {"λ_area", "λ_tv", "threshold"}
    assert sliders["λ_area"].value == pytest.approx(FAST.lambda_area)
    assert sliders["λ_tv"].value == pytest.approx(FAST.lambda_tv)
    assert not ui.explorer._cache                                       # render=False trains nothing
    ui.update()                                                         # what moving a slider does
    assert (FAST.lambda_area, FAST.lambda_tv) in ui.explorer._cache

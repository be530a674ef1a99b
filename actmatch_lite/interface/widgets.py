"""Interactive explorers for the notebooks: thin ipywidgets wrappers over pure functions that return figures.

    from actmatch_lite.interface.widgets import explore_weights, render_explanation
    explore_weights(model, x)                                   # sliders: λ_area, λ_tv, threshold
    render_explanation(model, x, lambda_area=20, lambda_tv=20)  # the same figure, no widgets

Everything a slider does goes through a pure function that is unit-tested without a front end:

* :meth:`WeightExplorer.explanation` runs :func:`actmatch_lite.method.explainer.explain` with
  ``dataclasses.replace(config, lambda_area=..., lambda_tv=...)`` (results are cached per pair of weights,
  so moving a slider back is instant);
* :func:`threshold_mask` re-thresholds the trained soft mask at the display threshold (no retraining): it
  shows how crisp the soft mask is. The mask network itself always trains with ``config.threshold``;
* :meth:`WeightExplorer.figure` draws image | soft mask | mask | explanation with the numbers in the title.

No front end (nbclient, nbval, a notebook viewer)? Widgets then render as nothing, so the notebooks always
call :func:`render_explanation` once with the default values as well: the saved notebook shows a figure
whether or not a live kernel with ipywidgets is attached. No detection is needed or attempted.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import matplotlib.pyplot as plt
import torch
from torch import nn

from actmatch_lite.evaluation.metrics import components
from actmatch_lite.interface import viz
from actmatch_lite.method.config import ExplainConfig, get_preset
from actmatch_lite.method.explainer import Explanation, explain
from actmatch_lite.method.fill import apply_mask, make_fill
from actmatch_lite.method.frozen import frozen
from actmatch_lite.spec import LoadedModel

LOG_RANGE = (-1.0, 3.0)   # slider range of λ_area and λ_tv, as powers of ten: 0.1 … 1000


@dataclass(frozen=True)
class Thresholded:
    """A soft mask cut at a display threshold: the hard mask, the explanation and ``p(y*)`` on it."""

    mask: torch.Tensor         # (B, 1, H, W) bool
    explanation: torch.Tensor  # (B, C, H, W)
    prob: torch.Tensor         # (B,) softmax(f(e))[y*]

    @property
    def area(self) -> torch.Tensor:
        return self.mask.flatten(1).float().mean(1)


def _classifier(model) -> tuple[nn.Module, tuple[float, ...] | None]:
    return (model.clf, model.mean) if isinstance(model, LoadedModel) else (model, None)


def _config(model, config) -> ExplainConfig:
    if config is None:
        if not isinstance(model, LoadedModel):
            raise ValueError("a plain nn.Module needs config= (an ExplainConfig with taps, or a preset name)")
        config = model.preset
    return get_preset(config) if isinstance(config, str) else config


def threshold_mask(model, x: torch.Tensor, soft_mask: torch.Tensor, target: torch.Tensor, threshold: float,
                   fill: str | float = "mean", mean: tuple[float, ...] | None = None) -> Thresholded:
    """``m = 1[m_soft > threshold]``, ``e = m ⊙ x + (1 - m) ⊙ fill`` and ``p(y*|e)`` for ``x (B, C, H, W)``.

    ``model``: a LoadedModel (its mean colour is the ``"mean"`` fill unless ``mean`` is given) or an ``nn.Module``.
    Pure: the model comes back unchanged.
    """
    clf, model_mean = _classifier(model)
    mean = mean if mean is not None else model_mean
    dev = next(clf.parameters()).device
    x, soft_mask, target = x.to(dev), soft_mask.to(dev), target.to(dev)
    m = soft_mask > threshold
    e = apply_mask(x, m.to(x.dtype), make_fill(x, fill, mean=mean))
    with frozen(clf), torch.no_grad():
        p = clf(e).softmax(1).gather(1, target.view(-1, 1))[:, 0]
    return Thresholded(m.cpu(), e.cpu(), p.cpu())


class WeightExplorer:
    """Explanations of ``x`` under different λ_area, λ_tv (cached), drawn at any display threshold.

    ``model``: a LoadedModel (or an ``nn.Module`` with ``config``); ``config``: an ExplainConfig or preset
    name (default: the model's preset); ``seed``: the explainer seed (the same for every pair of weights,
    so that only the weights change).
    """

    def __init__(self, model, x: torch.Tensor, *, config: ExplainConfig | str | None = None, seed: int = 0):
        self.model, self.x, self.seed = model, x, seed
        self.config = _config(model, config)
        self._cache: dict[tuple[float, float], Explanation] = {}

    def explanation(self, lambda_area: float, lambda_tv: float) -> Explanation:
        """``explain`` with the two weights replaced in the config; computed once per pair."""
        key = (float(lambda_area), float(lambda_tv))
        if key not in self._cache:
            cfg = dataclasses.replace(self.config, lambda_area=key[0], lambda_tv=key[1])
            self._cache[key] = explain(self.model, self.x, config=cfg, seed=self.seed, progress=False)
        return self._cache[key]

    def figure(self, lambda_area: float, lambda_tv: float, threshold: float = 0.5):
        """image | soft mask | mask | explanation per image, the numbers in the title; returns the Figure."""
        ex = self.explanation(lambda_area, lambda_tv)
        cut = threshold_mask(self.model, self.x, ex.soft_mask, ex.target, threshold, self.config.fill,
                             self.config.mean)
        fig = viz.show_explanations(self.x.cpu(), ex.soft_mask, cut.mask, cut.explanation)
        parts = [f"λ_area={lambda_area:.3g}, λ_tv={lambda_tv:.3g}, threshold={threshold:.2f}"]
        for i in range(min(len(self.x), 4)):
            parts.append(f"area {100 * float(cut.area[i]):.1f}%, {int(components(cut.mask[i:i + 1])[0])} blob(s), "
                         f"p(y*) {float(ex.prob_before[i]):.2f}→{float(cut.prob[i]):.2f}")
        fig.suptitle("\n".join(parts), fontsize=7)
        fig.tight_layout()
        plt.close(fig)  # the caller displays it (a notebook shows the returned figure once)
        return fig


def render_explanation(model, x: torch.Tensor, lambda_area: float | None = None, lambda_tv: float | None = None,
                       threshold: float = 0.5, *, config: ExplainConfig | str | None = None, seed: int = 0,
                       explorer: WeightExplorer | None = None):
    """One static figure of the explorer at the given values (None: the config's own weights).

    Pass ``explorer`` to reuse the explanations it has already computed.
    """
    explorer = explorer or WeightExplorer(model, x, config=config, seed=seed)
    cfg = explorer.config
    return explorer.figure(cfg.lambda_area if lambda_area is None else lambda_area,
                           cfg.lambda_tv if lambda_tv is None else lambda_tv, threshold)


def explore_weights(model, x: torch.Tensor, *, config: ExplainConfig | str | None = None, seed: int = 0,
                    threshold: float = 0.5, explorer: WeightExplorer | None = None, render: bool = True):
    """An ``ipywidgets.interactive`` with sliders for λ_area, λ_tv (log scale) and the display threshold.

    Moving a λ slider retrains (a few seconds on a CPU; the sliders update on release); moving the threshold
    only re-cuts the soft mask. The sliders start at the config's weights. ``render=False`` skips the first
    drawing (the figure appears when a slider moves). The returned object's ``.explorer`` holds the cache.
    """
    # ipywidgets and IPython come with the notebooks extra: the rest of this module runs without them
    import ipywidgets as w
    from IPython.display import display

    explorer = explorer or WeightExplorer(model, x, config=config, seed=seed)
    cfg = explorer.config

    def slider(name: str, value: float):
        value = min(max(value, 10 ** LOG_RANGE[0]), 10 ** LOG_RANGE[1])  # a log slider cannot show 0
        return w.FloatLogSlider(value=value, base=10, min=LOG_RANGE[0], max=LOG_RANGE[1], step=0.1,
                                description=name, continuous_update=False, readout_format=".3g")

    pending_skip = [not render]   # ipywidgets calls show once while building the widget

    def show(lambda_area: float, lambda_tv: float, threshold: float):
        if pending_skip[0]:
            pending_skip[0] = False
            return
        display(explorer.figure(lambda_area, lambda_tv, threshold))

    ui = w.interactive(show, lambda_area=slider("λ_area", cfg.lambda_area), lambda_tv=slider("λ_tv", cfg.lambda_tv),
                       threshold=w.FloatSlider(value=threshold, min=0.05, max=0.95, step=0.05, description="threshold",
                                               continuous_update=False))
    ui.explorer = explorer
    return ui

"""Attribution baselines taken from Captum (not rewritten): Grad-CAM, Integrated Gradients, Occlusion.

Each returns scores ``(B, 1, H, W)`` for ``y*`` (``target`` or the predicted class). Captum runs inside
``actmatch_lite.method.frozen.frozen``, so the classifier comes back with its modes and flags; Captum removes
its own hooks in ``finally``.
"""
from __future__ import annotations

import torch
from captum.attr import IntegratedGradients, LayerAttribution, LayerGradCam, Occlusion
from torch import nn

from actmatch_lite._validate import InputError
from actmatch_lite.evaluation.baselines._common import prepare
from actmatch_lite.method.capture import resolve_layers
from actmatch_lite.method.frozen import frozen

IG_STEPS = 32              # Riemann/Gauss-Legendre points on the path from the fill to x
BATCH_SIZE = 64            # images per forward pass inside Captum (at least the batch itself)
OCCLUSION_WINDOWS = 8      # the occluding square is about 1/8 of the shorter image side ...
OCCLUSION_OVERLAP = 2      # ... and moves by half its side, so each pixel is covered about 4 times


def gradcam_scores(clf: nn.Module, x: torch.Tensor, target=None, *, layer: str | None = None, seed: int = 0,
                   fill="zero") -> torch.Tensor:
    """Grad-CAM (Selvaraju et al., ICCV 2017): ``ReLU(Σ_c α_c A_c)``, ``α_c = mean_ij ∂z_y*/∂A_cij``.

    ``A = clf.get_submodule(layer)(…)`` (a conv block: the last one gives the classic map); ``z`` are the
    logits. The coarse map is upsampled bilinearly to the image (``LayerAttribution.interpolate``).
    """
    if layer is None:
        names = [n for n, _ in clf.named_modules() if n]
        raise InputError(f"Grad-CAM needs layer=NAME (a conv block, usually the last); layers: {', '.join(names)}")
    module = resolve_layers(clf, [layer])[layer]
    y, _ = prepare(clf, x, target, fill)
    with frozen(clf):
        # the input carries the graph: with frozen weights nothing else would make the layer output differentiable
        cam = LayerGradCam(clf, module).attribute(x.detach().clone().requires_grad_(True), target=y,
                                                  relu_attributions=True)
    return LayerAttribution.interpolate(cam.detach(), tuple(x.shape[-2:]), interpolate_mode="bilinear")


def integrated_gradients_scores(clf: nn.Module, x: torch.Tensor, target=None, *, layer=None, seed: int = 0,
                                fill="zero", n_steps: int = IG_STEPS,
                                batch_size: int = BATCH_SIZE) -> torch.Tensor:
    """Integrated Gradients (Sundararajan et al., ICML 2017), summed over channels::

        IG_ij = Σ_c (x - x̄)_cij ∫₀¹ ∂z_y*(x̄ + α (x - x̄)) / ∂x_cij dα,   x̄ = the fill image (the baseline)

    on the logits ``z``. Signed: the top ``k`` keeps the pixels that most support ``y*``.
    """
    y, baseline = prepare(clf, x, target, fill)
    with frozen(clf):
        ig = IntegratedGradients(clf).attribute(x, baselines=baseline, target=y, n_steps=n_steps,
                                                internal_batch_size=max(batch_size, x.shape[0]))
    return ig.detach().sum(1, keepdim=True)


def occlusion_scores(clf: nn.Module, x: torch.Tensor, target=None, *, layer=None, seed: int = 0, fill="zero",
                     window: int | None = None, stride: int | None = None,
                     batch_size: int = BATCH_SIZE) -> torch.Tensor:
    """Occlusion (Zeiler & Fergus, ECCV 2014), summed over channels: for each ``window × window`` square
    ``W`` slid with ``stride``, ``p(y*|x) - p(y*|x with W set to the fill)`` (**probabilities**), averaged
    over the squares that cover each pixel.

    Defaults: ``window = max(2, min(H, W) // 8)``, ``stride = max(1, window // 2)``.
    """
    y, baseline = prepare(clf, x, target, fill)
    window = max(2, min(x.shape[-2:]) // OCCLUSION_WINDOWS) if window is None else window
    stride = max(1, window // OCCLUSION_OVERLAP) if stride is None else stride
    c = x.shape[1]

    def prob(z):
        return clf(z).softmax(-1)

    with frozen(clf), torch.no_grad():
        occ = Occlusion(prob).attribute(x, sliding_window_shapes=(c, window, window), strides=(c, stride, stride),
                                        baselines=baseline, target=y,
                                        # Captum applies each perturbation to the whole batch
                                        perturbations_per_eval=max(1, batch_size // x.shape[0]))
    return occ.sum(1, keepdim=True)

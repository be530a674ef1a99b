"""Every classroom exercise of the notebooks: the library function it must match and its seeded test cases.

Importing this module registers the exercises with :mod:`actmatch_lite.exercises`; ``check(name, fn)`` then
runs the learner's ``fn`` and the reference on :data:`actmatch_lite.exercises.CASES` seeded argument tuples.
The references ARE the library's functions (the library is the single source of truth), so an exercise solved
in a notebook is, line for line, a second implementation of something the package ships.

=========================  ==========================================================  ========
name                       the learner writes                                          notebook
=========================  ==========================================================  ========
``apply_mask``             ``e = m ⊙ x + (1 - m) ⊙ fill``                               00
``record_layer``           a forward hook that records one layer's output               01
``cross_entropy_loss``     ``-log softmax(z_e)[y*]`` per image                          02
``kl_loss``                ``T² KL(softmax(z_x/T) ‖ softmax(z_e/T))`` per image         02
``cosine_distance``        ``1 - mean_l cos(a_x[l], a_e[l])`` over channels             03
``std_mse_distance``       MSE of per-channel standardised maps                         03
``area_loss``              ``mean m``                                                   04
``area_excess_loss``       ``max(0, mean m - a)``                                       04
``straight_through``       ``m_soft + (1[m_soft > t] - m_soft).detach()`` (checked      05
                           with its gradient: wrap it in :func:`with_gradient`)
``binarisation_loss``      ``mean m (1 - m)``                                           05
``tv_loss``                4- or 8-neighbour total variation (diagonals × 1/√2)         05
``sufficiency_loss``       mean over K backgrounds of ``-log softmax(f(ẽ_k))[y*]``      06
``necessity_loss``         ``max(0, margin - (z_y*(x) - z_y*(x_comp)))``                06
``necessity``              metric M3: does removing the mask flip the label?           07-12
``sufficiency``            metric M1: does the kept part alone keep the label?         07-12
``iou``                    metric M9: ``|m ∩ gt| / |m ∪ gt|``                           07-12
``pointing_game``          metric M9: is the soft mask's maximum on the object?         07-12
``deletion_auc``           metric M8: area under the deletion curve                    07-12
``instance_recall``        metric M10: one-to-one matching of masks to instances       07-12
=========================  ==========================================================  ========

Adding an exercise for a later notebook takes three lines: a ``make_args(gen)`` that draws arguments from
the CPU generator ``gen`` (so every learner sees the same cases), the library reference, and a hint::

    register("iou", Exercise(reference=metrics.iou, make_args=_mask_pair, hint="..."))

In a notebook the exercise cell defines the function with its solution between ``# BEGIN SOLUTION`` and
``# END SOLUTION`` lines (``notebook_tools.student_copy`` replaces them with a stub), and the next cell calls
``check("iou", my_iou)``.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from . import losses, metrics
from .capture import capture_activations
from .exercises import Exercise, register
from .fill import apply_mask
from .masknet import straight_through

UPSTREAM_SEED = 7  # the fixed upstream gradient with_gradient back-propagates


# -- helpers ---------------------------------------------------------------------------------------------
def with_gradient(fn: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
    """Wrap ``fn(m_soft, *rest)`` so that it returns its value AND the gradient reaching ``m_soft``.

    The wrapped function returns ``torch.stack([fn(m_soft), d<w, fn(m_soft)>/d m_soft])`` for a fixed random
    upstream weight ``w``. A straight-through estimator must have the binary mask as its value and the
    identity as its gradient (``grad = w``); checking only the value cannot tell ``m_soft + (m - m_soft)``
    (gradient 0) from the right answer. An answer that is not a tensor (``None`` from a forgotten ``return``) is
    passed through unchanged, so :func:`actmatch_lite.exercises.check` can say what it is.
    """

    def wrapped(m_soft: torch.Tensor, *rest):
        leaf = m_soft.detach().clone().requires_grad_(True)
        out = fn(leaf, *rest)
        if not isinstance(out, torch.Tensor):
            return out
        if out.shape != leaf.shape:
            raise ValueError(f"{wrapped.__name__} must return a tensor shaped like m_soft {tuple(leaf.shape)}, "
                             f"got {tuple(out.shape)}")
        w = torch.rand(out.shape, generator=torch.Generator().manual_seed(UPSTREAM_SEED), dtype=out.dtype)
        if out.requires_grad:
            (grad,) = torch.autograd.grad((out * w).sum(), leaf, allow_unused=True)
        else:
            grad = None
        grad = torch.zeros_like(leaf) if grad is None else grad
        return torch.stack([out.detach().to(leaf.dtype), grad.detach()])

    wrapped.__name__ = getattr(fn, "__name__", "fn")
    wrapped.__wrapped__ = fn   # check() looks for the learner's own lines in a traceback through this
    return wrapped


def record_layer(model: nn.Module, x: torch.Tensor, layer: str) -> torch.Tensor:
    """Reference for ``record_layer``: the output of ``model.get_submodule(layer)`` when ``model(x)`` runs."""
    with capture_activations(model, [layer]) as acts, torch.no_grad():
        model(x)
    return acts[layer][0]


def necessity_loss(logits_x: torch.Tensor, logits_comp: torch.Tensor, target: torch.Tensor,
                   margin: float) -> torch.Tensor:
    """Reference for ``necessity_loss``: the library's logit hinge with the margin passed by position."""
    return losses.necessity_loss(logits_x, logits_comp, target, margin=margin)


def deletion_auc(clf: nn.Module, x: torch.Tensor, scores: torch.Tensor, steps: int) -> torch.Tensor:
    """Reference for ``deletion_auc``: the library's metric (zero fill) with the step count passed by position."""
    return metrics.deletion_auc(clf, x, scores, steps=steps)


def _tiny_cnn(gen: torch.Generator) -> nn.Sequential:
    """A seeded 3-layer CNN for 1-channel 8×8 images, with named layers and one in-place ReLU."""
    model = nn.Sequential()
    model.add_module("conv1", nn.Conv2d(1, 4, 3, padding=1))
    model.add_module("relu1", nn.ReLU(inplace=True))
    model.add_module("conv2", nn.Conv2d(4, 6, 3, padding=1))
    model.add_module("relu2", nn.ReLU())
    model.add_module("pool", nn.AdaptiveAvgPool2d(2))
    model.add_module("flat", nn.Flatten())
    model.add_module("fc", nn.Linear(24, 3))
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
    return model.eval()


def _linear_classifier(gen: torch.Generator, channels: int = 1, side: int = 6, classes: int = 3) -> nn.Module:
    """A seeded linear classifier on tiny images: strong enough that masking changes its decision."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(channels * side * side, classes))
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 2.0)
    return model.eval()


def _soft_mask(gen: torch.Generator, b: int = 2, h: int = 7, w: int = 9) -> torch.Tensor:
    return torch.rand(b, 1, h, w, generator=gen)


def _binary_mask(gen: torch.Generator, b: int = 2, h: int = 6, w: int = 6) -> torch.Tensor:
    return torch.rand(b, 1, h, w, generator=gen) > 0.5


def _post_relu(gen: torch.Generator, shape: tuple[int, ...]) -> torch.Tensor:
    """Post-ReLU-like activations with no all-zero channel vector (channel 0 is kept positive)."""
    a = torch.randn(shape, generator=gen).relu()
    a[:, 0] += 0.1
    return a


def _labels(logits: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random targets ``(B,)`` for ``logits (B, classes)``, image 0's never its argmax and image 1's always it.

    An answer that reads ``logits.argmax`` instead of ``target`` then fails on image 0.
    """
    classes = logits.shape[1]
    y = torch.randint(classes, (len(logits),), generator=gen)
    top = logits.argmax(1)
    y[0] = (top[0] + 1 + torch.randint(classes - 1, (1,), generator=gen)[0]) % classes
    y[1] = top[1]
    return y


# -- argument makers -------------------------------------------------------------------------------------
def _args_apply_mask(gen):
    x = torch.rand(2, 3, 5, 5, generator=gen)
    return x, torch.rand(2, 1, 5, 5, generator=gen), torch.rand(2, 3, 5, 5, generator=gen)


def _args_record_layer(gen):
    layer = ("conv1", "relu1", "conv2", "relu2")[int(torch.randint(4, (1,), generator=gen))]
    return _tiny_cnn(gen), torch.rand(2, 1, 8, 8, generator=gen), layer


def _args_ce(gen):
    logits = torch.randn(3, 5, generator=gen) * 3
    return logits, _labels(logits, gen)


def _args_kl(gen):
    temperature = float(torch.tensor([1.0, 2.0, 4.0])[torch.randint(3, (1,), generator=gen)])
    return torch.randn(3, 6, generator=gen) * 3, torch.randn(3, 6, generator=gen) * 3, temperature


def _args_activation_pair(gen):
    shape = (2, 5, 4, 6)
    return _post_relu(gen, shape), _post_relu(gen, shape)


def _args_area_excess(gen):
    return _soft_mask(gen), float(torch.rand(1, generator=gen)) * 0.6


def _args_threshold(gen):
    """A soft mask with one pixel exactly at the threshold: ``m_soft > t`` leaves it out, ``>=`` would keep it."""
    m_soft = _soft_mask(gen)
    threshold = float(torch.tensor([0.5, 0.3, 0.7])[torch.randint(3, (1,), generator=gen)])
    m_soft[0, 0, 0, 0] = threshold
    return m_soft, threshold


def _args_tv(gen):
    return _soft_mask(gen), (4, 8)[int(torch.randint(2, (1,), generator=gen))]


def _args_sufficiency(gen):
    k, b, classes = 3, 2, 5
    return torch.randn(k, b, classes, generator=gen) * 3, torch.randint(classes, (b,), generator=gen)


def _args_necessity_loss(gen):
    b, classes = 4, 5
    logits_x = torch.randn(b, classes, generator=gen) * 3
    logits_comp = logits_x - torch.rand(b, classes, generator=gen) * 3   # drops around the margin
    return logits_x, logits_comp, _labels(logits_x, gen), float(torch.rand(1, generator=gen)) * 2


def _args_classifier_mask(gen):
    clf = _linear_classifier(gen)
    return clf, torch.rand(4, 1, 6, 6, generator=gen), _binary_mask(gen, b=4)


def _args_mask_pair(gen):
    """Mask pairs; in pair 0 both masks are empty, where IoU is 1 by definition (0/0 would be NaN)."""
    m, gt = _binary_mask(gen, b=3), _binary_mask(gen, b=3)
    m[0], gt[0] = False, False
    return m, gt


def _args_pointing(gen):
    """Soft masks with ties at their maximum: mask 0 is quantised to quarters (a plateau of maxima); mask 1 has
    exactly two maxima, one on the object and one off it (hit 1/2). Picking one argmax fails on them."""
    m_soft, gt = torch.rand(3, 1, 6, 6, generator=gen), _binary_mask(gen, b=3)
    m_soft[0] = (m_soft[0] * 4).round() / 4
    on, off = torch.randperm(36, generator=gen)[:2]
    gt[1].view(-1)[on], gt[1].view(-1)[off] = True, False
    m_soft[1] *= 0.9
    m_soft[1].view(-1)[torch.stack([on, off])] = 1.0
    return m_soft, gt


def _args_deletion(gen):
    """Step counts that do not divide the 36 pixels, so ``k_s = round(s·HW/S)`` differs from its floor."""
    clf = _linear_classifier(gen)
    steps = (5, 7)[int(torch.randint(2, (1,), generator=gen))]
    return clf, torch.rand(2, 1, 6, 6, generator=gen), torch.rand(2, 1, 6, 6, generator=gen), steps


def _args_instances(gen):
    """Two canvases of disjoint stripe instances; explanations are noisy copies, some missing. On the first
    canvas one explanation covers two instances at once (one-to-one matching counts it once) and one is empty
    (it matches nothing); on the second, one explanation is a 4-pixel piece of its instance (IoU 1/4, matched by
    its precision)."""
    explanations, instances = [], []
    for canvas in range(2):
        n = int(torch.randint(2, 4, (1,), generator=gen))
        gt = torch.zeros(n, 8, 8, dtype=torch.bool)
        for i in range(n):
            gt[i, :, 3 * i:3 * i + 2] = True
        order = torch.randperm(n, generator=gen)
        e = gt[order] | (torch.rand(n, 8, 8, generator=gen) > 0.85)
        if canvas == 0:
            e = torch.cat([(gt[0] | gt[1])[None], e[2:]])
        else:
            e[0] = gt[order[0]] & (torch.arange(64).view(8, 8) < 16)   # top 2 rows of a 2-pixel-wide stripe
        e = e[: max(1, len(e) - int(torch.randint(2, (1,), generator=gen)))]
        if canvas == 0:
            e = torch.cat([e, torch.zeros(1, 8, 8, dtype=torch.bool)])
        explanations.append(e)
        instances.append(gt)
    return explanations, instances


# -- the catalogue ---------------------------------------------------------------------------------------
register("apply_mask", Exercise(
    reference=apply_mask, make_args=_args_apply_mask,
    hint="e = m * x + (1 - m) * fill; m (B, 1, H, W) broadcasts over the channels."))
register("record_layer", Exercise(
    reference=record_layer, make_args=_args_record_layer,
    hint="register a forward hook on model.get_submodule(layer) that stores output.clone(), run model(x) "
         "under torch.no_grad(), and remove the hook in a finally block. Without clone, the in-place ReLU "
         "overwrites conv1's stored output."))
register("cross_entropy_loss", Exercise(
    reference=losses.cross_entropy_loss, make_args=_args_ce,
    hint="-log_softmax(logits_e, dim=1) at the target index, one value per image: shape (B,), no mean."))
register("kl_loss", Exercise(
    reference=losses.kl_loss, make_args=_args_kl,
    hint="p = softmax(z_x / T), log q = log_softmax(z_e / T); sum_k p (log p - log q) over classes, times T**2."))
register("cosine_distance", Exercise(
    reference=losses.cosine_distance, make_args=_args_activation_pair,
    hint="the cosine runs over CHANNELS (dim 1) at each location; average it over the H×W locations, then 1 - mean."))
register("std_mse_distance", Exercise(
    reference=losses.std_mse_distance, make_args=_args_activation_pair,
    hint="standardise each channel over its H×W locations: (a - mean) / sqrt(var + 1e-6) with the biased "
         "variance; then the mean squared difference over channels and locations, one value per image."))
register("area_loss", Exercise(
    reference=losses.area_loss, make_args=lambda gen: (_soft_mask(gen),),
    hint="the mean of the soft mask over its pixels, one value per image (B,)."))
register("area_excess_loss", Exercise(
    reference=losses.area_excess_loss, make_args=_args_area_excess,
    hint="max(0, mean(m) - target) per image: clamp_min(0) after subtracting the target."))
register("straight_through", Exercise(
    reference=with_gradient(straight_through), make_args=_args_threshold,
    hint="forward value: the hard mask (m_soft > threshold); gradient: that of m_soft. "
         "m_soft + (m - m_soft).detach() gives both; without .detach() the gradient cancels to 0. "
         "(The check stacks [value, gradient]: an index that starts with 1 is in the gradient.)"))
register("binarisation_loss", Exercise(
    reference=losses.binarisation_loss, make_args=lambda gen: (_soft_mask(gen),),
    hint="mean of m (1 - m) over the pixels, one value per image."))
register("tv_loss", Exercise(
    reference=losses.tv_loss, make_args=_args_tv,
    hint="means (not sums) of |differences| between vertical and horizontal neighbours; for 8 neighbours add "
         "the two diagonal means times 1/sqrt(2)."))
register("sufficiency_loss", Exercise(
    reference=losses.sufficiency_loss, make_args=_args_sufficiency,
    hint="cross-entropy of every background's logits (K, B, classes) against the target, then the mean over K: (B,)."))
register("necessity_loss", Exercise(
    reference=necessity_loss, make_args=_args_necessity_loss,
    hint="drop = z_x[y*] - z_comp[y*] per image; loss = max(0, margin - drop)."))
register("necessity", Exercise(
    reference=metrics.necessity, make_args=_args_classifier_mask,
    hint="x_comp = (1 - m) * x (zero fill); 1.0 where argmax clf(x_comp) differs from argmax clf(x), per image."))
register("sufficiency", Exercise(
    reference=metrics.sufficiency, make_args=_args_classifier_mask,
    hint="e = m * x (zero fill); 1.0 where argmax clf(e) equals argmax clf(x), per image."))
register("iou", Exercise(
    reference=metrics.iou, make_args=_args_mask_pair,
    hint="|m & gt| / |m | gt| per image, counted over (1, H, W); 1.0 when both are empty."))
register("pointing_game", Exercise(
    reference=metrics.pointing_game, make_args=_args_pointing,
    hint="the fraction of the pixels holding the soft mask's maximum that lie on gt, per image."))
register("deletion_auc", Exercise(
    reference=deletion_auc, make_args=_args_deletion,
    hint="rank pixels by score (highest first); at step s remove the top round(s·HW/steps) pixels (zero fill), "
         "read p(y*) with y* = argmax clf(x), and integrate with the trapezoid rule over the fractions 0..1."))
register("instance_recall", Exercise(
    reference=metrics.instance_recall, make_args=_args_instances,
    hint="a pair matches with IoU >= 0.3 or precision >= 0.7; match one-to-one (scipy's linear_sum_assignment "
         "with maximize=True) and divide the matches by the number of instances."))

"""Every classroom exercise of the notebooks: the library function it must match and its seeded test cases.

:data:`EXERCISES` maps each exercise's name to its :class:`Exercise`; :func:`actmatch_lite.interface.exercises.check`
runs the learner's ``fn`` and the reference on :data:`actmatch_lite.interface.exercises.CASES` seeded argument tuples
drawn by the exercise's argument maker from :mod:`actmatch_lite.interface.exercise_cases`.
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
``robustness_loss``        mean over K backgrounds of ``-log softmax(f(ẽ_k))[y*]``      06
``necessity_loss``         ``max(0, margin - (z_y*(x) - z_y*(x_comp)))``                06
``necessity``              metric M3: does removing the mask flip the label?           07-12
``sufficiency``            metric M1: does the kept part alone keep the label?         07-12
``iou``                    metric M9: ``|m ∩ gt| / |m ∪ gt|``                           07-12
``pointing_game``          metric M9: is the soft mask's maximum on the object?         07-12
``deletion_auc``           metric M8: area under the deletion curve                    07-12
``instance_recall``        metric M10: one-to-one matching of masks to instances       07-12
=========================  ==========================================================  ========

Adding an exercise for a later notebook takes two steps: a ``<what>_args(gen)`` in
:mod:`actmatch_lite.interface.exercise_cases` that draws arguments from the CPU generator ``gen`` (so every learner sees
the same cases), and an entry in :data:`EXERCISES` naming the library reference, that maker and a hint::

    "iou": Exercise(reference=metrics.iou, make_args=cases.mask_pair_args, hint="..."),

In a notebook the exercise cell defines the function with its solution between ``# BEGIN SOLUTION`` and
``# END SOLUTION`` lines (``notebook_tools.student_copy`` replaces them with a stub), and the next cell calls
``check("iou", my_iou)``.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from actmatch_lite.evaluation import metrics
from actmatch_lite.interface import exercise_cases as cases
from actmatch_lite.method import losses
from actmatch_lite.method.capture import capture_activations
from actmatch_lite.method.fill import apply_mask
from actmatch_lite.method.masknet import straight_through

UPSTREAM_SEED = 7  # the fixed upstream gradient with_gradient back-propagates


@dataclass(frozen=True)
class Exercise:
    """A reference, how to make its arguments from a generator, and the tolerance of agreement."""

    reference: Callable[..., torch.Tensor]
    make_args: Callable[[torch.Generator], tuple]
    hint: str
    atol: float = 1e-5


# -- references -----------------------------------------------------------------------------------------
def with_gradient(fn: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
    """Wrap ``fn(m_soft, *rest)`` so that it returns its value AND the gradient reaching ``m_soft``.

    The wrapped function returns ``torch.stack([fn(m_soft), d<w, fn(m_soft)>/d m_soft])`` for a fixed random
    upstream weight ``w``. A straight-through estimator must have the binary mask as its value and the
    identity as its gradient (``grad = w``); checking only the value cannot tell ``m_soft + (m - m_soft)``
    (gradient 0) from the right answer. An answer that is not a tensor (``None`` from a forgotten ``return``) is
    passed through unchanged, so :func:`actmatch_lite.interface.exercises.check` can say what it is.
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


# -- the catalogue ---------------------------------------------------------------------------------------
EXERCISES: dict[str, Exercise] = {
    "apply_mask": Exercise(
        reference=apply_mask, make_args=cases.apply_mask_args,
        hint="e = m * x + (1 - m) * fill; m (B, 1, H, W) broadcasts over the channels."),
    "record_layer": Exercise(
        reference=record_layer, make_args=cases.record_layer_args,
        hint="register a forward hook on model.get_submodule(layer) that stores output.clone(), run model(x) "
             "under torch.no_grad(), and remove the hook in a finally block. Without clone, the in-place ReLU "
             "overwrites conv1's stored output."),
    "cross_entropy_loss": Exercise(
        reference=losses.cross_entropy_loss, make_args=cases.cross_entropy_args,
        hint="-log_softmax(logits_e, dim=1) at the target index, one value per image: shape (B,), no mean."),
    "kl_loss": Exercise(
        reference=losses.kl_loss, make_args=cases.kl_args,
        hint="p = softmax(z_x / T), log q = log_softmax(z_e / T); "
             "sum_k p (log p - log q) over classes, times T**2."),
    "cosine_distance": Exercise(
        reference=losses.cosine_distance, make_args=cases.activation_pair_args,
        hint="the cosine runs over CHANNELS (dim 1) at each location; "
             "average it over the H×W locations, then 1 - mean."),
    "std_mse_distance": Exercise(
        reference=losses.std_mse_distance, make_args=cases.activation_pair_args,
        hint="standardise each channel over its H×W locations: (a - mean) / sqrt(var + 1e-6) with the biased "
             "variance; then the mean squared difference over channels and locations, one value per image."),
    "area_loss": Exercise(
        reference=losses.area_loss, make_args=cases.soft_mask_args,
        hint="the mean of the soft mask over its pixels, one value per image (B,)."),
    "area_excess_loss": Exercise(
        reference=losses.area_excess_loss, make_args=cases.area_excess_args,
        hint="max(0, mean(m) - target) per image: clamp_min(0) after subtracting the target."),
    "straight_through": Exercise(
        reference=with_gradient(straight_through), make_args=cases.threshold_args,
        hint="forward value: the hard mask (m_soft > threshold); gradient: that of m_soft. "
             "m_soft + (m - m_soft).detach() gives both; without .detach() the gradient cancels to 0. "
             "(The check stacks [value, gradient]: an index that starts with 1 is in the gradient.)"),
    "binarisation_loss": Exercise(
        reference=losses.binarisation_loss, make_args=cases.soft_mask_args,
        hint="mean of m (1 - m) over the pixels, one value per image."),
    "tv_loss": Exercise(
        reference=losses.tv_loss, make_args=cases.tv_args,
        hint="means (not sums) of |differences| between vertical and horizontal neighbours; for 8 neighbours add "
             "the two diagonal means times 1/sqrt(2)."),
    "robustness_loss": Exercise(
        reference=losses.robustness_loss, make_args=cases.robustness_loss_args,
        hint="cross-entropy of every background's logits (K, B, classes) against the target, "
             "then the mean over K: (B,)."),
    "necessity_loss": Exercise(
        reference=necessity_loss, make_args=cases.necessity_loss_args,
        hint="drop = z_x[y*] - z_comp[y*] per image; loss = max(0, margin - drop)."),
    "necessity": Exercise(
        reference=metrics.necessity, make_args=cases.classifier_mask_args,
        hint="x_comp = (1 - m) * x (zero fill); "
             "1.0 where argmax clf(x_comp) differs from argmax clf(x), per image."),
    "sufficiency": Exercise(
        reference=metrics.sufficiency, make_args=cases.classifier_mask_args,
        hint="e = m * x (zero fill); 1.0 where argmax clf(e) equals argmax clf(x), per image."),
    "iou": Exercise(
        reference=metrics.iou, make_args=cases.mask_pair_args,
        hint="|m & gt| / |m | gt| per image, counted over (1, H, W); 1.0 when both are empty."),
    "pointing_game": Exercise(
        reference=metrics.pointing_game, make_args=cases.pointing_args,
        hint="the fraction of the pixels holding the soft mask's maximum that lie on gt, per image."),
    "deletion_auc": Exercise(
        reference=deletion_auc, make_args=cases.deletion_args,
        hint="rank pixels by score (highest first); at step s remove the top round(s·HW/steps) pixels (zero fill), "
             "read p(y*) with y* = argmax clf(x), and integrate with the trapezoid rule over the fractions 0..1."),
    "instance_recall": Exercise(
        reference=metrics.instance_recall, make_args=cases.instances_args,
        hint="a pair matches with IoU >= 0.3 or precision >= 0.7; match one-to-one (scipy's linear_sum_assignment "
             "with maximize=True) and divide the matches by the number of instances."),
}

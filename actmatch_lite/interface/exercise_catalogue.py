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
``area_weight``            a float λ_area (graded by behaviour, see below)              04
``vacuous_sufficiency``    ``my_vacuous(clf, x, fill) -> (m, y)`` (graded by behaviour)  06
=========================  ==========================================================  ========

Two exercises are graded by what the answer DOES, not by equality with a library function:

* ``check("area_weight", lam)``: ``lam`` is a number λ_area (not a function). It passes when :func:`explain` with
  the ``shapes`` preset and ``lambda_area=lam`` (seed 0, one CPU thread) keeps the top-1 label
  (``Explanation.label_kept``) on all 8 images of ``make_shapes(8, seed=AREA_WEIGHT_SEED)`` AND their mean hard-mask
  area is under ``AREA_LIMIT`` (10 %). The seed is used nowhere else (not for training, tuning or benchmarks).
  The verdict names the condition that failed and by how much. About 5-15 s on one CPU thread; each λ is graded
  once per session (cached). The library's answer is 60.0 (8 of 8 kept, mean area about 7.5 %).
* ``check("vacuous_sufficiency", my_vacuous)`` with ``my_vacuous(clf, x, fill) -> (m, y)``: ``clf`` a classifier
  returning logits, ``x (B, C, H, W)`` images, ``fill (B, C, H, W)`` the fill; return a hard mask
  ``m (B, 1, H, W)`` (bool, or float in {0, 1}) and targets ``y (B,)`` (integer) such that, for every image, the
  sufficiency test passes (``argmax clf(m ⊙ x + (1 - m) ⊙ fill) = y``) AND it proves nothing: the fill alone is
  classified ``y`` (``method.objective.fill_kept``), so the mask did no work. Four seeded cases with a tiny
  linear classifier and zero, constant and noise fills; in each, at least one image's own class differs from the
  fill's, so ``y = argmax clf(x)`` with a full mask (sufficiency that is not vacuous) fails, and so does the fill's
  class with a full mask (sufficiency does not hold). A reference answer: the empty mask and the fill's class.

Adding an exercise for a later notebook takes two steps: a ``<what>_args(gen)`` in
:mod:`actmatch_lite.interface.exercise_cases` that draws arguments from the CPU generator ``gen`` (so every learner sees
the same cases), and an entry in :data:`EXERCISES` naming the library reference, that maker and a hint::

    "iou": Exercise(reference=metrics.iou, make_args=cases.mask_pair_args, hint="..."),

In a notebook the exercise cell defines the function with its solution between ``# BEGIN SOLUTION`` and
``# END SOLUTION`` lines (``notebook_tools.student_copy`` replaces them with the block's ``# STUB:`` lines, or a
``raise NotImplementedError``), the next cell calls ``check("iou", my_iou)``, and cells that use the learner's
function take ``solution_or_library("iou", my_iou)``.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from actmatch_lite.evaluation import metrics
from actmatch_lite.interface import exercise_cases as cases
from actmatch_lite.interface.exercise_behaviour import (AREA_LIMIT, AREA_WEIGHT_IMAGES, grade_area_weight,
                                                        grade_vacuous, vacuous_sufficiency)
from actmatch_lite.method import losses
from actmatch_lite.method.capture import capture_activations
from actmatch_lite.method.fill import apply_mask
from actmatch_lite.method.masknet import straight_through

UPSTREAM_SEED = 7       # the fixed upstream gradient with_gradient back-propagates


@dataclass(frozen=True)
class Exercise:
    """A reference, how to make its arguments from a generator, and the tolerance of agreement.

    ``reference``: the function whose answers the learner's must match (for a behaviour-graded exercise, an
    answer that passes; for a value exercise, that value). ``library``: what :func:`solution_or_library` hands
    back when it is not ``reference`` itself. ``wrap``: applied to the learner's function before the comparison.
    ``parts``: names of the stacked tensors of an answer, so a verdict says which part differs. ``settings``:
    the case's settings that matter, for the verdict. ``grade(args, answer) -> problem or None`` replaces the
    comparison (behaviour grading); ``value``: the answer is a value, not a function; ``cases``: how many
    (default ``exercises.CASES``); ``passed``: the behaviour-graded verdict on success.
    """

    reference: Any
    make_args: Callable[[torch.Generator], tuple]
    hint: str
    atol: float = 1e-5
    library: Any = None
    wrap: Callable | None = None
    parts: tuple[str, ...] = ()
    settings: Callable[[tuple], str] | None = None
    grade: Callable[[tuple, Any], str | None] | None = None
    value: bool = False
    cases: int | None = None
    passed: str = ""


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
    wrapped.with_gradient = True   # check() wraps a plain function itself, and not twice
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
        reference=losses.kl_loss, make_args=cases.kl_args, settings=lambda a: f"T = {a[2]:g}",
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
        reference=with_gradient(straight_through), make_args=cases.threshold_args, library=straight_through,
        wrap=with_gradient, parts=("value", "gradient"), settings=lambda a: f"threshold = {a[1]:g}",
        hint="forward value: the hard mask (m_soft > threshold); gradient: that of m_soft. "
             "m_soft + (m - m_soft).detach() gives both; without .detach() the gradient cancels to 0."),
    "binarisation_loss": Exercise(
        reference=losses.binarisation_loss, make_args=cases.soft_mask_args,
        hint="mean of m (1 - m) over the pixels, one value per image."),
    "tv_loss": Exercise(
        reference=losses.tv_loss, make_args=cases.tv_args, settings=lambda a: f"neighbours = {a[1]}",
        hint="means (not sums) of |differences| between vertical and horizontal neighbours; for 8 neighbours add "
             "the two diagonal means times 1/sqrt(2)."),
    "robustness_loss": Exercise(
        reference=losses.robustness_loss, make_args=cases.robustness_loss_args,
        hint="cross-entropy of every background's logits (K, B, classes) against the target, "
             "then the mean over K: (B,)."),
    "necessity_loss": Exercise(
        reference=necessity_loss, make_args=cases.necessity_loss_args, settings=lambda a: f"margin = {a[3]:.3g}",
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
    "area_weight": Exercise(
        reference=60.0, make_args=lambda _gen: (), grade=grade_area_weight, value=True, cases=1,
        passed=f"all {AREA_WEIGHT_IMAGES} images keep their label with a mean area under {AREA_LIMIT:.0%}",
        hint="λ_area = 0 keeps everything (area near 100 %); a very large λ_area empties masks and loses labels "
             "(last_feasible then returns an early, large mask). Try values between, on a log scale."),
    "vacuous_sufficiency": Exercise(
        reference=vacuous_sufficiency, make_args=cases.vacuous_args, grade=grade_vacuous,
        passed="every answer keeps the label, and only because the fill alone is classified y",
        hint="what is e when m keeps no pixel? Pick y as the class the classifier gives that image."),
}

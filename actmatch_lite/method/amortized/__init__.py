"""Amortized activation matching: ONE mask network trained over a dataset, one forward pass per image.

The paper (Suhail, Anand, Sethi 2025, arXiv 2509.23051) trains a fresh mask network ``U`` per image. Here one
network ``U_θ`` is trained over a training set ``D`` on the SAME per-image objective ``L`` (the terms and
weights of an :class:`~actmatch_lite.method.config.ExplainConfig`, computed by the explainer's own code), averaged:

    θ* = argmin_θ  mean_{x ∈ D} L(x, m_st),    m_st = straight_through(sigmoid(U_θ(x))),  y* = argmax f(x)

as in real-time saliency (Dabkowski & Gal 2017) and Stalder et al. (2022). At test time
``m_soft = sigmoid(U_θ*(x))`` costs one forward pass; ``refine_steps = N`` continues per image from θ*.

Modules, one concept each:

* :mod:`.explainer`: :class:`AmortizedExplainer` (explain, save, load);
* :mod:`.selection`: the hard mask from the soft one (the ``keep`` rule over top-k candidates);
* :mod:`.refinement`: the per-image regime warm-started from θ*;
* :mod:`.training`: :func:`train_amortized` over a tensor of images;
The shipped networks, and the recipes that made them, live with the shipped classifiers
(:mod:`actmatch_lite.models.amortized`: ``load_amortized(model)``); the comparison with the per-image regime lives in
the evaluation layer (:mod:`actmatch_lite.evaluation.amortized`).
"""
from actmatch_lite.method.amortized.explainer import FORMAT, AmortizedExplainer
from actmatch_lite.method.amortized.refinement import refine, stack_networks
from actmatch_lite.method.amortized.selection import AREA_GRID, select_masks
from actmatch_lite.method.amortized.training import train_amortized

__all__ = ["AREA_GRID", "FORMAT", "AmortizedExplainer", "refine", "select_masks", "stack_networks",
           "train_amortized"]

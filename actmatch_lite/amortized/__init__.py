"""Amortized activation matching: ONE mask network trained over a dataset, one forward pass per image.

The paper (Suhail, Anand, Sethi 2025, arXiv 2509.23051) trains a fresh mask network ``U`` per image. Here one
network ``U_θ`` is trained over a training set ``D`` on the SAME per-image objective ``L`` (the terms and
weights of an :class:`~actmatch_lite.config.ExplainConfig`, computed by the explainer's own code), averaged:

    θ* = argmin_θ  mean_{x ∈ D} L(x, m_st),    m_st = straight_through(sigmoid(U_θ(x))),  y* = argmax f(x)

as in real-time saliency (Dabkowski & Gal 2017) and Stalder et al. (2022). At test time
``m_soft = sigmoid(U_θ*(x))`` costs one forward pass; ``refine_steps = N`` continues per image from θ*.

Modules, one concept each:

* :mod:`.explainer`: :class:`AmortizedExplainer` (explain, save, load), the shipped networks (:func:`load_amortized`);
* :mod:`.selection`: the hard mask from the soft one (the ``keep`` rule over top-k candidates);
* :mod:`.refinement`: the per-image regime warm-started from θ*;
* :mod:`.training`: :func:`train_amortized` over a tensor of images;
* :mod:`.recipes`: which data and settings made the shipped files (``train_recipe(name)`` reproduces them);
* :mod:`.evaluation`: the comparison with the per-image regime on held-out images.

The last two read datasets (and :mod:`.evaluation` the metrics); they are not imported here, so the method does not
depend on them.
"""
from .explainer import FORMAT, AmortizedExplainer, classifier_sha256, load_amortized, shipped_file
from .refinement import refine, stack_networks
from .selection import AREA_GRID, select_masks
from .training import train_amortized

__all__ = ["AREA_GRID", "FORMAT", "AmortizedExplainer", "classifier_sha256", "load_amortized", "refine",
           "select_masks", "shipped_file", "stack_networks", "train_amortized"]

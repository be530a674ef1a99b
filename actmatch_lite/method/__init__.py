"""The method: activation matching for explanation generation (Suhail, Anand, Sethi 2025, arXiv 2509.23051).

Read in this order: :mod:`.fill` (what replaces removed pixels), :mod:`.frozen` and :mod:`.capture` (the classifier
and its activations), :mod:`.losses` (every term of the objective), :mod:`.masknet` (the mask network and the
straight-through mask), :mod:`.config` (the settings and presets), :mod:`.objective` (the terms put together),
:mod:`.explainer` and :mod:`.stopping` (the per-image loop), :mod:`.amortized` (one network over a dataset) and
:mod:`.instances` (several explanations per image).

The method imports only the base modules (``actmatch_lite._validate``, ``paths``, ``seeding``, ``spec``,
``checksums``) and itself; the evaluation and the interface build on it, never the reverse.
"""

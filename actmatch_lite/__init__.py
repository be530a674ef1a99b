"""actmatch_lite: Activation Matching for Explanation Generation (Suhail, Anand, Sethi 2025, arXiv 2509.23051).

    from actmatch_lite import load_model, explain
    model = load_model("shapes-cnn")
    ex = explain(model, x)          # x (B, C, H, W) in [0, 1]

Layers, each importing only those above it in this list (docs/ARCHITECTURE.md):

* base: ``_validate``, ``paths``, ``seeding``, ``spec``, ``checksums``;
* ``method/``: the paper's method (losses, mask network, objective, explainer, amortized, instances);
* ``data/``, ``models/``: the shipped data sets and classifiers, and how they were made;
* ``evaluation/``: metrics, baselines, suites, benchmarks, ablations;
* ``interface/``: command line, demo, figures, widgets, notebook tools, exercises.
"""
from importlib.metadata import version

from actmatch_lite._validate import InputError
from actmatch_lite.method.capture import capture_activations
from actmatch_lite.method.config import PRESETS, ExplainConfig, get_preset
from actmatch_lite.method.explainer import Explanation, explain
from actmatch_lite.method.instances import explain_instances
from actmatch_lite.models import LoadedModel, available_models, load_amortized, load_model
from actmatch_lite.seeding import pick_device, seed_everything

__version__ = version("actmatch_lite")  # pyproject.toml is the single source

__all__ = ["PRESETS", "ExplainConfig", "Explanation", "InputError", "LoadedModel", "available_models",
           "capture_activations", "explain", "explain_instances", "get_preset", "load_amortized", "load_model",
           "pick_device", "seed_everything"]

"""actmatch_lite: Activation Matching for Explanation Generation (Suhail, Anand, Sethi 2025, arXiv 2509.23051).

    from actmatch_lite import load_model, explain
    model = load_model("shapes-cnn")
    ex = explain(model, x)          # x (B, C, H, W) in [0, 1]
"""
from importlib.metadata import version

from actmatch_lite._validate import InputError
from actmatch_lite.capture import capture_activations
from actmatch_lite.config import PRESETS, ExplainConfig, get_preset
from actmatch_lite.explainer import Explanation, explain
from actmatch_lite.models import LoadedModel, available_models, load_model
from actmatch_lite.seeding import pick_device, seed_everything

__version__ = version("actmatch_lite")  # pyproject.toml is the single source

__all__ = ["PRESETS", "ExplainConfig", "Explanation", "InputError", "LoadedModel", "available_models",
           "capture_activations", "explain", "get_preset", "load_model", "pick_device", "seed_everything"]

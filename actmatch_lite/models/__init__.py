"""Classifiers: ``load_model(name) -> LoadedModel`` (frozen, with taps, class names and preprocessing)."""
from actmatch_lite.checksums import ChecksumError
from actmatch_lite.models.amortized import load_amortized
from actmatch_lite.models.registry import available_models, load_model
from actmatch_lite.spec import LoadedModel

__all__ = ["ChecksumError", "LoadedModel", "available_models", "load_amortized", "load_model"]

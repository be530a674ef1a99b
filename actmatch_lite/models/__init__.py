"""Classifiers: ``load_model(name) -> LoadedModel`` (frozen, with taps, class names and preprocessing)."""
from actmatch_lite.models.registry import available_models, load_model
from actmatch_lite.models.spec import LoadedModel
from actmatch_lite.models.weights import ChecksumError

__all__ = ["ChecksumError", "LoadedModel", "available_models", "load_model"]

"""The shipped amortized explainers: how each was trained (one :class:`Recipe` per model, :func:`train_recipe`)
and how to load it (:func:`load_amortized`, checksums verified).

``train_recipe("shapes-cnn")`` writes ``data/amortized_shapes.pt`` (``"fmnist-cnn"``: ``amortized_fmnist.pt``) on
the CPU, bitwise reproducibly with the recipe's thread count.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch

from actmatch_lite._validate import InputError
from actmatch_lite.checksums import ChecksumError, classifier_sha256, verified_path
from actmatch_lite.data import load_fashion_mnist, make_shapes
from actmatch_lite.method.amortized.explainer import RETRAIN, AmortizedExplainer
from actmatch_lite.method.amortized.training import train_amortized
from actmatch_lite.method.config import get_preset
from actmatch_lite.method.masknet import default_spec
from actmatch_lite.models.registry import load_model
from actmatch_lite.paths import data_dir
from actmatch_lite.spec import LoadedModel


@dataclass(frozen=True)
class Recipe:
    """How a shipped amortized explainer is trained. ``n_train``: training images (shapes: generated with
    ``data_seed``, a seed no evaluation uses; Fashion-MNIST: a ``data_seed`` permutation of the train split,
    None = all of it). ``threads``: results are bitwise reproducible only with the same thread count."""

    n_train: int | None
    data_seed: int
    epochs: int
    batch_size: int = 32
    lr: float = 2e-3
    width: int | None = None      # first-level channels of the mask network (None: masknet.default_spec)
    objective: tuple[tuple[str, float], ...] = ()   # changes to the model's preset for the training objective
    seed: int = 0
    threads: int = 1              # one thread: on a shared 2-core machine two-thread runs stall on each other


RECIPES = {
    "shapes-cnn": Recipe(n_train=16_000, data_seed=1, epochs=1),
    # twice the default width: one network must find the telling part of ten kinds of garment. λ_ce 4, not the
    # per-image preset's 8 (which fixes a per-image collapse the amortized network does not have): with 8 the
    # checkpoint rule picks step 250 of 1867, sufficiency 0.949 at 8.4 % area on test-subset images 1000-1255,
    # against 0.965 at 5.8 % with 4.
    "fmnist-cnn": Recipe(n_train=None, data_seed=1, epochs=1, width=16, objective=(("lambda_ce", 4.0),)),
}


def recipe(name: str) -> Recipe:
    """The recipe of model ``name`` (``InputError`` naming the models that have one)."""
    if name not in RECIPES:
        raise InputError(f"no amortized recipe for {name!r}; recipes exist for {sorted(RECIPES)}")
    return RECIPES[name]


def training_images(name: str, r: Recipe) -> torch.Tensor:
    """The training images of recipe ``r`` for model ``name``."""
    if name == "shapes-cnn":
        return make_shapes(r.n_train, seed=r.data_seed).x
    x, _ = load_fashion_mnist("train")
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(r.data_seed))
    return x[order[:r.n_train]]


@contextmanager
def recipe_threads(r: Recipe, *, deterministic: bool = False) -> Iterator[None]:
    """Run the block with ``r.threads`` CPU threads and, with ``deterministic``, torch's deterministic algorithms;
    both settings come back afterwards, also after an error."""
    threads = torch.get_num_threads()
    det, warn_only = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    torch.set_num_threads(r.threads)
    if deterministic:
        torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(det, warn_only=warn_only)


def train_recipe(name: str, out: str | Path | None = None, *,
                 progress: bool = True) -> tuple[AmortizedExplainer, Path, str]:
    """Train the amortized explainer of model ``name`` by its recipe, on the CPU, and save it to ``out`` (default:
    ``data/`` + :func:`shipped_file`); returns the explainer, the path and the file's SHA-256."""
    r = recipe(name)
    with recipe_threads(r, deterministic=True):
        model = load_model(name, device="cpu")
        x = training_images(name, r)
        spec = default_spec(tuple(x.shape[-2:]))
        spec = dataclasses.replace(spec, width=r.width) if r.width else spec
        config = dataclasses.replace(get_preset(model.preset), **dict(r.objective))
        amz = train_amortized(model, x, config=config, epochs=r.epochs, batch_size=r.batch_size, seed=r.seed,
                              lr=r.lr, spec=spec, progress=progress)
    out = Path(out) if out is not None else data_dir() / shipped_file(name)
    return amz, out, amz.save(out)


def shipped_file(name: str) -> str:
    """File name in ``data/`` of the shipped amortized explainer for model ``name`` (e.g. ``amortized_shapes.pt``)."""
    return f"amortized_{name.removesuffix('-cnn')}.pt"


def load_amortized(model: LoadedModel | str) -> AmortizedExplainer:
    """The shipped amortized explainer for ``model`` (a LoadedModel or its name): its file checksum verified, and
    trained for the classifier weights shipped now (``ChecksumError`` otherwise)."""
    model = load_model(model) if isinstance(model, str) else model
    amz = AmortizedExplainer.load(verified_path(shipped_file(model.name)), model)
    if amz.meta.get("classifier_sha256") != classifier_sha256(model.name):
        # an explainer trained for other weights of the classifier would explain a different function
        raise ChecksumError(f"{shipped_file(model.name)} was trained for other {model.name} weights; "
                            f"{RETRAIN.format(name=model.name)} and update CHECKSUMS")
    return amz


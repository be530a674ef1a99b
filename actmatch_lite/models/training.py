"""Reproduce the shipped classifier weights: ``python -m actmatch_lite train {shapes-cnn,fmnist-cnn}``.

Each recipe is a frozen dataclass (every setting visible). Training is seeded and deterministic on the CPU;
the script saves a float32 state_dict in ``data/``, prints its SHA-256 (record it in
``actmatch_lite/checksums.py``) and the test accuracy on data never used for training.
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from actmatch_lite.checksums import sha256_of
from actmatch_lite.data.fmnist import load_fashion_mnist
from actmatch_lite.data.shapes import make_shapes
from actmatch_lite.method.fill import dilate, random_backgrounds
from actmatch_lite.models.fmnist_cnn import FashionCNN
from actmatch_lite.models.shapes_cnn import ShapesCNN
from actmatch_lite.paths import data_dir
from actmatch_lite.progress import progress_bar
from actmatch_lite.seeding import seed_everything


@dataclass(frozen=True)
class Recipe:
    """How one model is trained. ``blocks`` x ``block_size`` images are seen in all (shapes: fresh each block)."""

    seed: int = 0
    lr: float = 3e-3
    weight_decay: float = 1e-4
    batch_size: int = 64
    epochs: int = 1
    blocks: int = 10
    block_size: int = 2048
    test_seed: int = 10_000       # shapes: a split seed never used for training (training uses seeds < blocks)
    test_size: int = 2000
    # shapes: this fraction of training images gets a random background (zero, mean colour, Gaussian or uniform
    # noise) outside its object mask, grown by 0-3 px. Without it the classifier calls every noise image "plus",
    # so no mask can keep a label on a noise background (robustness, M2, and the sufficiency term L_rob).
    background_swap: float = 0.0
    # CPU threads: one, because two-thread runs on a shared 2-core machine stall on each other, and a fixed
    # count fixes the summation order (weights are bitwise reproducible only with the same count)
    threads: int = 1


RECIPES = {
    "shapes-cnn": Recipe(epochs=2, background_swap=0.5),
    "fmnist-cnn": Recipe(lr=2e-3, batch_size=128, epochs=10),
}


def _batches(x: torch.Tensor, y: torch.Tensor, batch_size: int, gen: torch.Generator | None
             ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    order = torch.randperm(len(y), generator=gen) if gen is not None else torch.arange(len(y))
    for i in range(0, len(y), batch_size):
        idx = order[i:i + batch_size]
        yield x[idx], y[idx]


@torch.no_grad()
def accuracy(clf: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 500) -> float:
    """Top-1 accuracy of ``clf`` on ``x (n, C, H, W)`` in [0, 1] with labels ``y (n,)``."""
    was = clf.training
    clf.eval()
    correct = sum(int((clf(xb).argmax(-1) == yb).sum()) for xb, yb in _batches(x, y, batch_size, None))
    clf.train(was)
    return correct / len(y)


def set_normalisation(clf: nn.Module, x: torch.Tensor) -> None:
    """Store the per-channel mean / std of training images ``x (n, C, H, W)`` in the model's buffers."""
    clf.mean.copy_(x.mean((0, 2, 3)).view_as(clf.mean))
    clf.std.copy_(x.std((0, 2, 3)).view_as(clf.std))


def _fit(clf: nn.Module, blocks: Iterator[tuple[torch.Tensor, torch.Tensor]], steps: int, r: Recipe,
         gen: torch.Generator) -> None:
    opt = torch.optim.AdamW(clf.parameters(), lr=r.lr, weight_decay=r.weight_decay)
    # one-cycle: a short warm-up then annealing, which reaches high accuracy within a single pass
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=r.lr, total_steps=steps)
    clf.train()
    with progress_bar(total=steps, desc="train", unit="step") as bar:
        for x, y in blocks:
            for xb, yb in _batches(x, y, r.batch_size, gen):
                loss = F.cross_entropy(clf(xb), yb)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                bar.update()
                bar.set_postfix(loss=f"{loss.item():.3f}")
    clf.eval()


SWAP_KINDS = ("zero", "mean", "gaussian", "uniform")
MAX_GROW = 3


def swap_backgrounds(x: torch.Tensor, masks: torch.Tensor, fraction: float, gen: torch.Generator) -> torch.Tensor:
    """Replace the background of a ``fraction`` of ``x (n, C, H, W)`` outside its object ``masks (n, 1, H, W)``.

    Each chosen image gets one background kind of :data:`SWAP_KINDS` and its mask grown by 0 to ``MAX_GROW``
    pixels (so a little clutter may stay around the object, as around an explanation's mask).
    """
    n = len(x)
    chosen = torch.rand(n, generator=gen) < fraction
    kind = torch.randint(len(SWAP_KINDS), (n,), generator=gen)
    grow = torch.randint(MAX_GROW + 1, (n,), generator=gen)
    bgs = random_backgrounds(x, SWAP_KINDS, mean=tuple(x.mean((0, 2, 3)).tolist()), generator=gen)
    keep = torch.stack([dilate(masks.bool(), g) for g in range(MAX_GROW + 1)])[grow, torch.arange(n)].float()
    bg = bgs[kind, torch.arange(n)]
    out = keep * x + (1 - keep) * bg
    return torch.where(chosen[:, None, None, None], out, x)


def train_shapes_cnn(r: Recipe) -> tuple[nn.Module, float]:
    """Train ``shapes-cnn`` on fresh generated blocks (seeds ``0 .. epochs · blocks - 1``); test on seed ``r.test_seed``."""
    gen = seed_everything(r.seed)
    clf = ShapesCNN()
    set_normalisation(clf, make_shapes(r.block_size, seed=0).x)
    steps = r.epochs * r.blocks * -(-r.block_size // r.batch_size)

    def blocks():
        for e in range(r.epochs):
            for b in range(r.blocks):
                d = make_shapes(r.block_size, seed=e * r.blocks + b)
                x = swap_backgrounds(d.x, d.masks, r.background_swap, gen) if r.background_swap else d.x
                yield x, d.y

    _fit(clf, blocks(), steps, r, gen)
    test = make_shapes(r.test_size, seed=r.test_seed)
    return clf, accuracy(clf, test.x, test.y)


def train_fmnist_cnn(r: Recipe) -> tuple[nn.Module, float]:
    """Train ``fmnist-cnn`` on the full Fashion-MNIST training split; test on the full test split."""
    gen = seed_everything(r.seed)
    x, y = load_fashion_mnist("train")
    clf = FashionCNN()
    set_normalisation(clf, x)
    steps = r.epochs * -(-len(y) // r.batch_size)
    _fit(clf, ((x, y) for _ in range(r.epochs)), steps, r, gen)
    xt, yt = load_fashion_mnist("test")
    return clf, accuracy(clf, xt, yt)


TRAINERS = {"shapes-cnn": train_shapes_cnn, "fmnist-cnn": train_fmnist_cnn}


def train_and_save(name: str, out: Path | None = None, epochs: int | None = None) -> dict:
    """Train classifier ``name`` by its recipe (``epochs`` overrides the recipe's), deterministically on the CPU with
    the recipe's thread count, and save its float32 state_dict to ``out`` (default ``data/<name>.pt``).

    Returns what to record: parameters, seconds, test accuracy, the file, its size and SHA-256 (for ``CHECKSUMS``).
    """
    recipe = RECIPES[name] if epochs is None else dataclasses.replace(RECIPES[name], epochs=epochs)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(recipe.threads)
    t0 = time.perf_counter()
    clf, acc = TRAINERS[name](recipe)
    seconds = time.perf_counter() - t0
    out = Path(out) if out is not None else data_dir() / (name.replace("-", "_") + ".pt")
    state = {k: (v.float() if v.is_floating_point() else v).detach().contiguous() for k, v in clf.state_dict().items()}
    torch.save(state, out)
    return {"name": name, "parameters": sum(p.numel() for p in clf.parameters()), "seconds": seconds,
            "accuracy": acc, "file": out, "bytes": out.stat().st_size, "sha256": sha256_of(out)}

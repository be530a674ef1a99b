"""Fashion-MNIST (Xiao, Rasul & Vollgraf 2017; Zalando Research, MIT licence).

The full data is read from the official IDX files when they are installed; a balanced 2,000-image subset
of the test split ships with the package (``data/fmnist_test_subset.npz``) so notebooks run anywhere.
"""
from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import torch


FMNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                  "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
ENV_FASHION_MNIST = "ACTMATCH_FASHION_MNIST"
SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
DOWNLOAD_DIR = Path.home() / ".cache" / "actmatch"
FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
SUBSET_FILE = "fmnist_test_subset.npz"
SUBSET_PER_CLASS = 200
SUBSET_SEED = 0
IDX_DTYPE = {0x08: np.uint8}  # the only element type Fashion-MNIST uses


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (optionally ``.gz``): magic ``0 0 dtype ndim``, ``ndim`` big-endian uint32 sizes, data."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    zero, dtype, ndim = int.from_bytes(raw[:2], "big"), raw[2], raw[3]
    if zero != 0 or dtype not in IDX_DTYPE:
        raise ValueError(f"{path} is not an unsigned-byte IDX file (header {raw[:4].hex()})")
    shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, dtype=IDX_DTYPE[dtype], offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path} holds {data.size} values but its header says shape {shape}")
    return data.reshape(shape)


def _find(name: str, folder: Path) -> Path | None:
    """``name`` or ``name.gz`` in ``folder``, or in the ``FashionMNIST/raw`` layout torchvision downloads into."""
    for candidate in (folder / name, folder / f"{name}.gz", folder / "FashionMNIST" / "raw" / name):
        if candidate.is_file():
            return candidate
    return None


def _search_folders(path: str | Path | None) -> list[Path]:
    """Where to look, in order: ``path``, ``$ACTMATCH_FASHION_MNIST``, the Debian package's folder."""
    return [Path(p) for p in (path, os.environ.get(ENV_FASHION_MNIST), SYSTEM_DIR) if p]


def find_fashion_mnist(split: str = "test", path: str | Path | None = None) -> tuple[Path, Path] | None:
    """Paths of ``split``'s (images, labels) IDX files in the first search folder holding both, else None."""
    for folder in _search_folders(path):
        images, labels = (_find(name, folder) for name in FILES[split])
        if images and labels:
            return images, labels
    return None


def load_fashion_mnist(split: str = "test", path: str | Path | None = None,
                       download: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Fashion-MNIST ``split`` as ``x (n, 1, 28, 28)`` float32 in [0, 1] and ``y (n,)`` int64.

    Looks in ``path``, then ``$ACTMATCH_FASHION_MNIST``, then ``/usr/share/datasets/fashion-mnist/``; with
    ``download=True`` (needs internet) torchvision fetches it into ``path`` (default :data:`DOWNLOAD_DIR`).
    """
    if split not in FILES:
        raise ValueError(f"split must be one of {tuple(FILES)}, got {split!r}")
    found = find_fashion_mnist(split, path)
    if found is None and download:
        from torchvision.datasets import FashionMNIST

        root = Path(path) if path else DOWNLOAD_DIR
        FashionMNIST(str(root), train=split == "train", download=True)
        found = find_fashion_mnist(split, root)
    if found is None:
        raise FileNotFoundError(
            f"Fashion-MNIST ({split}) was not found in {', '.join(map(str, _search_folders(path)))}. "
            "Install it with `sudo apt-get install dataset-fashion-mnist` (Debian/Ubuntu), or set "
            f"${ENV_FASHION_MNIST} to a folder holding the *-idx?-ubyte[.gz] files, or pass download=True "
            "(needs internet). Offline, load_fmnist_subset() gives the shipped 2,000-image test subset.")
    images, labels = found
    x = torch.from_numpy(read_idx(images).copy()).float().div_(255).unsqueeze(1)
    y = torch.from_numpy(read_idx(labels).astype(np.int64))
    return x, y


def subset_indices(y: np.ndarray, per_class: int = SUBSET_PER_CLASS, seed: int = SUBSET_SEED) -> np.ndarray:
    """Sorted indices of a balanced, seeded choice of ``per_class`` items of each class in labels ``y``."""
    rng = np.random.default_rng(seed)
    picks = [rng.choice(np.flatnonzero(y == c), per_class, replace=False) for c in range(len(FMNIST_CLASSES))]
    return np.sort(np.concatenate(picks))


def write_fmnist_subset(out: str | Path, path: str | Path | None = None) -> Path:
    """Write the shipped subset: uint8 ``images (2000, 28, 28)``, ``labels``, ``indices`` into the test split."""
    x, y = load_fashion_mnist("test", path)
    idx = subset_indices(y.numpy())
    images = (x[idx, 0] * 255).round().to(torch.uint8).numpy()
    np.savez_compressed(out, images=images, labels=y[idx].numpy().astype(np.uint8), indices=idx.astype(np.int32))
    return Path(out)


def load_fmnist_subset() -> tuple[torch.Tensor, torch.Tensor]:
    """The shipped balanced test subset (200 per class): ``x (2000, 1, 28, 28)`` float32 in [0, 1], ``y (2000,)``."""
    from actmatch_lite.models.weights import verified_path

    with np.load(verified_path(SUBSET_FILE)) as z:
        x = torch.from_numpy(z["images"]).float().div_(255).unsqueeze(1)
        y = torch.from_numpy(z["labels"].astype(np.int64))
    return x, y


if __name__ == "__main__":  # python -m actmatch_lite.data.fmnist -> regenerates data/fmnist_test_subset.npz
    from actmatch_lite.paths import data_dir

    print("wrote", write_fmnist_subset(data_dir() / SUBSET_FILE))

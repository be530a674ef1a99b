"""Fashion-MNIST (Xiao, Rasul & Vollgraf 2017; Zalando Research, MIT licence).

The full data is read from the official IDX files when they are installed; a balanced 2,000-image subset
of the test split ships with the package (``data/fmnist_test_subset.npz``) so notebooks run anywhere.
"""
from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np
import torch

from actmatch_lite._validate import InputError
from actmatch_lite.checksums import verified_path

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
IMAGE_SHAPE = (28, 28)
REFETCH_HINT = ("delete it and fetch Fashion-MNIST again (load_fashion_mnist(download=True), or reinstall "
                "dataset-fashion-mnist)")


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (optionally ``.gz``): magic ``0 0 dtype ndim``, ``ndim`` big-endian uint32 sizes, data."""
    opener = gzip.open if str(path).endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (gzip.BadGzipFile, EOFError, zlib.error) as err:   # not gzip, truncated, or corrupt inside
        raise InputError(f"{path} is not a readable gzip file ({err}); {REFETCH_HINT}.") from err
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] not in IDX_DTYPE:
        raise InputError(f"{path} is not an unsigned-byte IDX file (header {raw[:4].hex() or 'empty'}); "
                         f"{REFETCH_HINT}.")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, dtype=IDX_DTYPE[raw[2]], offset=min(len(raw), 4 + 4 * ndim))
    if len(raw) < 4 + 4 * ndim or data.size != int(np.prod(shape)):
        raise InputError(f"{path} holds {data.size} values but its header says shape {shape} (truncated?); "
                         f"{REFETCH_HINT}.")
    return data.reshape(shape)


def _find(name: str, folder: Path) -> Path | None:
    """``name`` or ``name.gz`` in ``folder``, or in the ``FashionMNIST/raw`` layout torchvision downloads into."""
    for candidate in (folder / name, folder / f"{name}.gz", folder / "FashionMNIST" / "raw" / name):
        if candidate.is_file():
            return candidate
    return None


def _data_folder(path: str | Path | None) -> Path:
    """The one folder to read: ``path``, else ``$ACTMATCH_FASHION_MNIST`` when set, else the Debian package's."""
    env = os.environ.get(ENV_FASHION_MNIST)
    return Path(path) if path else Path(env) if env else SYSTEM_DIR


def find_fashion_mnist(split: str = "test", path: str | Path | None = None) -> tuple[Path, Path] | None:
    """Paths of ``split``'s (images, labels) IDX files in :func:`_data_folder`, or None when they are not there.

    Only one folder is read, so a folder the user named is never skipped for another copy; and a set
    ``$ACTMATCH_FASHION_MNIST`` that does not hold both files (when no ``path`` is given) is an error.
    """
    folder = _data_folder(path)
    images, labels = (_find(name, folder) for name in FILES[split])
    if images and labels:
        return images, labels
    if not path and os.environ.get(ENV_FASHION_MNIST):
        what = "does not exist" if not folder.is_dir() else \
            f"holds no {' and no '.join(f'{name}[.gz]' for name in FILES[split])}"
        raise InputError(f"${ENV_FASHION_MNIST} is set to {folder}, which {what}; point it at the folder holding "
                         f"the Fashion-MNIST IDX files, or unset it to use {SYSTEM_DIR}.")
    return None


def load_fashion_mnist(split: str = "test", path: str | Path | None = None,
                       download: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Fashion-MNIST ``split`` as ``x (n, 1, 28, 28)`` float32 in [0, 1] and ``y (n,)`` int64.

    Reads ``path`` when given, else ``$ACTMATCH_FASHION_MNIST`` when set, else ``/usr/share/datasets/fashion-mnist/``
    (never a fallback from one to the next); with ``download=True`` (needs internet) torchvision fetches it into
    ``path`` (default :data:`DOWNLOAD_DIR`). Corrupt files, and images and labels that do not pair up (e.g. test
    images with train labels), raise an :class:`InputError` naming the files.
    """
    if split not in FILES:
        raise ValueError(f"split must be one of {tuple(FILES)}, got {split!r}")
    found = find_fashion_mnist(split, path)
    if found is None and download:
        from torchvision.datasets import FashionMNIST  # only on this online path: tests and notebooks never take it

        root = Path(path) if path else DOWNLOAD_DIR
        FashionMNIST(str(root), train=split == "train", download=True)
        found = find_fashion_mnist(split, root)
    if found is None:
        raise FileNotFoundError(
            f"Fashion-MNIST ({split}) was not found in {_data_folder(path)}. "
            "Install it with `sudo apt-get install dataset-fashion-mnist` (Debian/Ubuntu), or set "
            f"${ENV_FASHION_MNIST} to a folder holding the *-idx?-ubyte[.gz] files, or pass download=True "
            "(needs internet). Offline, load_fmnist_subset() gives the shipped 2,000-image test subset.")
    images, labels = found
    x_raw, y_raw = read_idx(images), read_idx(labels)
    check_pair(x_raw, y_raw, images, labels)
    x = torch.from_numpy(x_raw.copy()).float().div_(255).unsqueeze(1)
    y = torch.from_numpy(y_raw.astype(np.int64))
    return x, y


def check_pair(x_raw: np.ndarray, y_raw: np.ndarray, images: Path, labels: Path) -> None:
    """Images ``(n, 28, 28)`` and labels ``(n,)`` in [0, 10) that belong together, else an :class:`InputError`."""
    if x_raw.ndim != 3 or x_raw.shape[1:] != IMAGE_SHAPE:
        raise InputError(f"{images} holds an array of shape {x_raw.shape}, not 28x28 Fashion-MNIST images; "
                         f"{REFETCH_HINT}.")
    if y_raw.ndim != 1 or (y_raw.size and int(y_raw.max()) >= len(FMNIST_CLASSES)):
        raise InputError(f"{labels} does not hold Fashion-MNIST labels (shape {y_raw.shape}, classes 0..9); "
                         f"{REFETCH_HINT}.")
    if len(x_raw) != len(y_raw):
        raise InputError(f"mismatched Fashion-MNIST files: {len(x_raw)} images but {len(y_raw)} labels ({images}, "
                         f"{labels}); keep each split's images and labels from one download ({', '.join(FILES['test'])}"
                         f" for test, {', '.join(FILES['train'])} for train).")


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
    with np.load(verified_path(SUBSET_FILE)) as z:
        x = torch.from_numpy(z["images"]).float().div_(255).unsqueeze(1)
        y = torch.from_numpy(z["labels"].astype(np.int64))
    return x, y

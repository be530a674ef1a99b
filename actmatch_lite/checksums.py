"""Shipped files: SHA-256 checksums and loaders that verify them.

A checksum mismatch means the file was changed or truncated (for example a Git LFS pointer instead of the
file); loading it anyway would give a silently wrong classifier and wrong explanations.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from actmatch_lite.paths import data_file

# file name in data/ -> SHA-256 of its bytes (`python -m actmatch_lite train` prints the hash of new weights)
CHECKSUMS: dict[str, str] = {
    "shapes_cnn.pt": "7ea2eba53dea25d431aea8a43cf1d95cef9019154b9a8762c67dd023931028da",
    "fmnist_cnn.pt": "7e230adb90a81a1d252e94c1db096f2e513aeba5248ef37bceac6ebc74f98595",
    "fmnist_test_subset.npz": "869428b842df1bbb60a25b9bd48aaac168ce5e60c03b120fa6897f3b81f15934",
    "amortized_shapes.pt": "fd5048ef90693b6770bc0e6736ab7cb83ae6af99b173468dd08134f1f135991c",
    "amortized_fmnist.pt": "6ec0be3dd451252115d65388f882bf12edbb200558f22b8a28f9e4a0d6d62896",
}
READ_BLOCK = 1 << 20


class ChecksumError(RuntimeError):
    """A shipped file's bytes do not match the SHA-256 recorded in :data:`CHECKSUMS`."""


def sha256_of(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(READ_BLOCK), b""):
            h.update(block)
    return h.hexdigest()


def verified_path(name: str) -> Path:
    """Path of the shipped file ``name`` after checking its SHA-256; :class:`ChecksumError` on mismatch."""
    path = data_file(name)
    expected = CHECKSUMS.get(name)
    if not expected:
        raise ChecksumError(f"no checksum is recorded for {name!r} in actmatch_lite/checksums.py; "
                           "add the SHA-256 printed by `python -m actmatch_lite train`.")
    actual = sha256_of(path)
    if actual != expected:
        raise ChecksumError(
            f"{path} has SHA-256 {actual} but {expected} is expected: the file is corrupt or was replaced. "
            f"Restore it with `git checkout -- data/{name}` (run `git lfs pull` if it is a pointer file), "
            "or retrain it with the command in data/README.md and update CHECKSUMS.")
    return path


def load_state_dict(name: str) -> dict[str, torch.Tensor]:
    """The verified state_dict stored in the shipped file ``name`` (loaded on the CPU, tensors only)."""
    return torch.load(verified_path(name), map_location="cpu", weights_only=True)


def classifier_sha256(name: str) -> str | None:
    """SHA-256 recorded for the shipped weights of classifier ``name`` (None for one without shipped weights)."""
    return CHECKSUMS.get(f"{name.replace('-', '_')}.pt")

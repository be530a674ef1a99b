"""Where the package finds its shipped files (the repository's ``data/`` folder)."""
from __future__ import annotations

import os
from pathlib import Path

ENV_DATA_DIR = "ACTMATCH_DATA_DIR"


def data_dir() -> Path:
    """The folder holding shipped weights and data subsets.

    ``$ACTMATCH_DATA_DIR`` wins when set; otherwise the repository's ``data/`` folder next to the package
    (the package is installed in editable mode by ``make setup``).
    """
    override = os.environ.get(ENV_DATA_DIR)
    path = Path(override) if override else Path(__file__).resolve().parent.parent / "data"
    if not path.is_dir():
        raise FileNotFoundError(
            f"actmatch_lite's data folder was not found at {path}. Install the package from a clone of the "
            f"repository with `make setup` (editable install), or point ${ENV_DATA_DIR} at a copy of its data/ folder."
        )
    return path


def data_file(name: str) -> Path:
    """A shipped file in :func:`data_dir`, with a clear error when it is missing."""
    path = data_dir() / name
    if not path.is_file():
        raise FileNotFoundError(
            f"shipped file {name!r} is missing from {path.parent}. Restore it with `git checkout -- data/{name}` "
            "or regenerate it with the command given for it in data/README.md."
        )
    return path

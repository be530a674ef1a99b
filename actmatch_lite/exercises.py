"""Classroom exercises: compare a learner's function with the library's reference on seeded cases.

    from actmatch_lite.exercises import check
    check("tv_loss", my_tv_loss)      # prints a friendly verdict, returns True/False

Each exercise names a reference function, a seeded generator of argument tuples and a tolerance.
An unsolved stub (``raise NotImplementedError``) is reported, not raised, so student notebooks run through.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

CASES = 4       # seeded argument tuples per exercise
SEED = 2024


@dataclass(frozen=True)
class Exercise:
    """A reference, how to make its arguments from a generator, and the tolerance of agreement."""

    reference: Callable[..., torch.Tensor]
    make_args: Callable[[torch.Generator], tuple]
    hint: str
    atol: float = 1e-5


_REGISTRY: dict[str, Exercise] = {}


def register(name: str, exercise: Exercise) -> None:
    _REGISTRY[name] = exercise


def exercises() -> list[str]:
    """Names of every registered exercise."""
    _load_catalogue()
    return sorted(_REGISTRY)


def _load_catalogue() -> None:
    from actmatch_lite import exercise_catalogue  # noqa: F401  (registers on import)


def _agree(got, want, atol: float) -> bool:
    got = torch.as_tensor(got, dtype=torch.float64)
    want = torch.as_tensor(want, dtype=torch.float64)
    return got.shape == want.shape and bool(torch.allclose(got, want, atol=atol, rtol=1e-4))


def check(name: str, fn: Callable[..., torch.Tensor], *, verbose: bool = True) -> bool:
    """Run ``fn`` and the reference of exercise ``name`` on seeded cases; print a verdict; True if they agree."""
    _load_catalogue()
    if name not in _REGISTRY:
        raise KeyError(f"unknown exercise {name!r}; known: {', '.join(sorted(_REGISTRY))}")
    ex = _REGISTRY[name]
    say = print if verbose else (lambda *_: None)
    gen = torch.Generator().manual_seed(SEED)
    for case in range(CASES):
        args = ex.make_args(gen)
        try:
            got = fn(*[a.clone() if isinstance(a, torch.Tensor) else a for a in args])
        except NotImplementedError:
            say(f"[{name}] not attempted yet: replace the stub with your code and run the check again.")
            return False
        except Exception as err:  # a learner's bug is reported, not raised
            say(f"[{name}] your function raised {type(err).__name__}: {err}. Hint: {ex.hint}")
            return False
        want = ex.reference(*args)
        if not _agree(got, want, ex.atol):
            shape = tuple(torch.as_tensor(got).shape)
            say(f"[{name}] case {case + 1}/{CASES} differs: got shape {shape}, expected "
                f"{tuple(torch.as_tensor(want).shape)}; values {torch.as_tensor(got).flatten()[:3].tolist()} vs "
                f"{torch.as_tensor(want).flatten()[:3].tolist()}. Hint: {ex.hint}")
            return False
    say(f"[{name}] correct on all {CASES} cases. Well done!")
    return True

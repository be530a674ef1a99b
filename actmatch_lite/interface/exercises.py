"""Classroom exercises: compare a learner's function with the library's reference on seeded cases.

    from actmatch_lite.interface.exercises import check
    check("tv_loss", my_tv_loss)      # prints a friendly verdict, returns True/False

Each exercise of :data:`actmatch_lite.interface.exercise_catalogue.EXERCISES` names a reference function, a seeded
generator of argument tuples and a tolerance.
``check`` never raises on a learner's mistake: an unsolved stub (``raise NotImplementedError``), a forgotten
``return``, an answer of the wrong type, shape or dtype, NaNs, an exception in the learner's code (its one-line
message and the line it came from) and a model left changed (hooks, mode, ``requires_grad``, weights) each get a
one-line verdict, so student notebooks run through. The reference runs first, on a deep copy of the arguments,
so nothing the learner's function does to them (a leaked hook that rewrites a layer) can change what it expects.
"""
from __future__ import annotations

import copy
import inspect
import traceback
from collections.abc import Callable

import torch
from torch import nn

from actmatch_lite.interface.exercise_catalogue import EXERCISES
from actmatch_lite.method.capture import count_hooks

CASES = 4       # seeded argument tuples per exercise
SEED = 2024


def exercises() -> list[str]:
    """Names of every exercise in :data:`actmatch_lite.interface.exercise_catalogue.EXERCISES`."""
    return sorted(EXERCISES)


def _kind(dtype: torch.dtype) -> str:
    if dtype == torch.bool:
        return "bool"
    return "complex" if dtype.is_complex else "floating-point" if dtype.is_floating_point else "integer"


def _answer_problem(got, want: torch.Tensor, atol: float) -> str | None:
    """What is wrong with the learner's answer ``got`` against the reference's ``want``, or None if they agree.

    Agreement: same shape, same kind of dtype, NaN exactly where ``want`` has NaN, and
    ``|got - want| <= atol + 1e-4 |want|`` elsewhere (``torch.isclose``), compared in float64.
    """
    want = torch.as_tensor(want).detach()
    if got is None:
        return "your function returned None: did you forget the `return` statement?"
    if not isinstance(got, torch.Tensor):
        return f"your function returned a {type(got).__name__}, expected a tensor of shape {tuple(want.shape)}."
    got = got.detach()
    if got.shape != want.shape:
        return f"your function returned shape {tuple(got.shape)}, expected {tuple(want.shape)}."
    if _kind(got.dtype) != _kind(want.dtype):
        return (f"your function returned dtype {got.dtype}, expected a {_kind(want.dtype)} tensor like "
                f"{want.dtype} (convert with .to({want.dtype})).")
    got, want = got.cpu().to(torch.float64), want.cpu().to(torch.float64)
    nan = got.isnan() & ~want.isnan()
    if nan.any():
        index = tuple(nan.nonzero()[0].tolist())
        return f"your answer is NaN at index {index}, where {want[index].item():.4g} was expected."
    close = torch.isclose(got, want, atol=atol, rtol=1e-4, equal_nan=True)
    if not close.all():
        index = tuple((~close).nonzero()[0].tolist())
        return (f"values differ: at index {index} got {got[index].item():.4g}, expected {want[index].item():.4g} "
                f"(first values {got.flatten()[:3].tolist()} vs {want.flatten()[:3].tolist()}).")
    return None


def _raised(fn: Callable, err: Exception) -> str:
    """``"your function raised TypeError: <first line> (in my_fn, line 3: <code>)."``: no traceback from check."""
    lines = str(err).strip().splitlines()
    where = ""
    # the deepest frame in the file the learner's function was written in (a notebook cell, a script)
    source = getattr(getattr(inspect.unwrap(fn), "__code__", None), "co_filename", None)
    frames = [f for f in traceback.extract_tb(err.__traceback__) if f.filename == source]
    if frames:
        code = f": {frames[-1].line}" if frames[-1].line else ""
        where = f" (in {frames[-1].name}, line {frames[-1].lineno}{code})"
    return f"your function raised {type(err).__name__}: {lines[0] if lines else ''}{where}."


def _model_state(model: nn.Module) -> dict:
    """What a learner's function must leave as it found it: hooks, modes, ``requires_grad`` flags, tensors."""
    return {
        # hooks on each module itself (count_hooks counts the whole subtree), so a verdict can name the layer
        "hooks": {name: count_hooks(m) - sum(count_hooks(c) for c in m.children())
                  for name, m in model.named_modules()},
        "training": {name: m.training for name, m in model.named_modules()},
        "requires_grad": {name: p.requires_grad for name, p in model.named_parameters()},
        "tensors": {name: t.detach().clone() for name, t in model.state_dict().items()},
    }


def _model_changes(before: dict, model: nn.Module) -> list[str]:
    """How ``model`` differs from the snapshot ``before``, each as a phrase with the fix."""
    after = _model_state(model)
    changes = []
    hooked = [name or "model" for name, n in after["hooks"].items() if n > before["hooks"].get(name, 0)]
    if hooked:
        n = sum(after["hooks"].values()) - sum(before["hooks"].values())
        changes.append(f"left {n} hook{'s' * (n != 1)} on the model (on {', '.join(map(repr, hooked))}): "
                       "keep the handle and call handle.remove() in a finally block")
    moved = [name or "model" for name, mode in after["training"].items() if mode != before["training"][name]]
    if moved:
        mode = "training" if after["training"][""] else "eval"
        changes.append(f"left the model in {mode} mode ({', '.join(map(repr, moved[:3]))} changed): "
                       "do not call model.train() or model.eval() in your function")
    flipped = [n for n, flag in after["requires_grad"].items() if flag != before["requires_grad"][n]]
    if flipped:
        changes.append(f"changed requires_grad of {', '.join(map(repr, flipped[:3]))}: leave the parameters' "
                       "flags alone (use torch.no_grad() instead)")
    edited = [n for n, v in after["tensors"].items() if not torch.equal(v, before["tensors"][n])]
    if edited:
        changes.append(f"changed the model's weights or buffers ({', '.join(map(repr, edited[:3]))}): "
                       "do not modify the model")
    return changes


def check(name: str, fn: Callable[..., torch.Tensor], *, verbose: bool = True) -> bool:
    """Run ``fn`` and the reference of exercise ``name`` on seeded cases; print a verdict; True if they agree.

    A learner's mistake never raises here: it is reported in one line with the exercise's hint.
    """
    if name not in EXERCISES:
        raise KeyError(f"unknown exercise {name!r}; known: {', '.join(sorted(EXERCISES))}")
    ex = EXERCISES[name]
    say = print if verbose else (lambda *_: None)
    gen = torch.Generator().manual_seed(SEED)
    for case in range(CASES):
        args = ex.make_args(gen)
        want = ex.reference(*copy.deepcopy(args))       # first and on a copy: the learner cannot change it
        mine = copy.deepcopy(args)                      # the learner may modify its inputs in place
        models = [a for a in mine if isinstance(a, nn.Module)]
        before = [_model_state(m) for m in models]
        try:
            got = fn(*mine)
            problem = None
        except NotImplementedError:
            say(f"[{name}] not attempted yet: replace the stub with your code and run the check again.")
            return False
        except Exception as err:  # a learner's bug is reported, not raised
            got, problem = None, _raised(fn, err)
        changes = [c for m, b in zip(models, before) for c in _model_changes(b, m)]
        problem = problem or (f"your function {'; it also '.join(changes)}." if changes else None)
        problem = problem or _answer_problem(got, want, ex.atol)
        if problem is not None:
            say(f"[{name}] case {case + 1}/{CASES}: {problem} Hint: {ex.hint}")
            return False
    say(f"[{name}] correct on all {CASES} cases. Well done!")
    return True

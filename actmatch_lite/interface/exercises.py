"""Classroom exercises: compare a learner's function with the library's reference on seeded cases.

    from actmatch_lite.interface.exercises import check, solution_or_library
    check("tv_loss", my_tv_loss)                   # prints a friendly verdict, returns True/False
    tv = solution_or_library("tv_loss", my_tv_loss)  # later cells: yours if it passes, else the library's

Each exercise of :data:`actmatch_lite.interface.exercise_catalogue.EXERCISES` names a reference function, a seeded
generator of argument tuples and a tolerance.
``check`` never raises on a learner's mistake: an unsolved stub (``raise NotImplementedError``), ``...`` holes
left in a skeleton, the library's own function handed in, a forgotten ``return``, an answer of the wrong type,
shape or dtype, NaNs, an exception in the learner's code (its one-line message and the line it came from) and a
model left changed (hooks, mode, ``requires_grad``, weights) each get a one-line verdict, so student notebooks
run through. The reference runs first, on a deep copy of the arguments, so nothing the learner's function does
to them (a leaked hook that rewrites a layer) can change what it expects.
A failing case's verdict names the settings that matter (``T``, ``neighbours``, ``threshold``, ``margin``), and an
exercise checked on several parts (the straight-through value and gradient) says which part differs. Exercises
graded by behaviour (``area_weight``, ``vacuous_sufficiency``) run their own test instead of a comparison.
"""
from __future__ import annotations

import copy
import functools
import inspect
import io
import tokenize
import traceback
from collections.abc import Callable
from typing import Any

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


def _answer_problem(got, want: torch.Tensor, atol: float, what: str = "values") -> str | None:
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
        return (f"{what} differ: at index {index} got {got[index].item():.4g}, expected {want[index].item():.4g} "
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


HOLES = "not finished yet: fill in the `...` holes with your code, then run the check again."


def _has_holes(got) -> bool:
    """An answer that is ``...`` (``return ...`` in a skeleton), or a tuple holding one."""
    return got is Ellipsis or (isinstance(got, (tuple, list)) and any(g is Ellipsis for g in got))


def _source_has_holes(fn) -> bool:
    """The learner's source holds a ``...`` hole: an Ellipsis outside square brackets (``m[..., 0]`` indexes)."""
    try:
        source = inspect.getsource(inspect.unwrap(fn))
        depth = 0
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.OP:
                depth += (tok.string == "[") - (tok.string == "]")
                if tok.string == "..." and depth == 0:
                    return True
    except (OSError, TypeError, tokenize.TokenError, IndentationError, SyntaxError):
        pass   # no source (a builtin, a lambda typed at a prompt): no verdict from it
    return False


def _from_the_library(fn, ex) -> bool:
    """``fn`` is the exercise's reference or any function the package defines (seen through wrappers)."""
    inner = inspect.unwrap(fn.func if isinstance(fn, functools.partial) else fn)
    module = getattr(inner, "__module__", None) or ""
    return fn is ex.reference or inner is ex.reference or inner is ex.library \
        or module == "actmatch_lite" or module.startswith("actmatch_lite.")


def _compare(got, want, ex) -> str | None:
    """The comparison verdict; an exercise with ``parts`` (its answers stack several tensors) names the part."""
    if ex.parts and isinstance(got, torch.Tensor) and got.shape == torch.as_tensor(want).shape:
        for i, part in enumerate(ex.parts):
            problem = _answer_problem(got[i], want[i], ex.atol, what=f"the {part.upper()}S")
            if problem is not None:
                return problem
        return None
    return _answer_problem(got, want, ex.atol)


def _case(ex, fn, args) -> tuple[str | None, str | None]:
    """(the verdict on one case or None, the whole-exercise verdict of an untouched stub or ``...`` holes)."""
    want = None if ex.grade else ex.reference(*copy.deepcopy(args))   # first, on a copy: the learner cannot change it
    mine = copy.deepcopy(args)                      # the learner may modify its inputs in place
    models = [a for a in mine if isinstance(a, nn.Module)]
    before = [_model_state(m) for m in models]
    problem = None
    try:
        got = fn if ex.value else fn(*mine)
    except NotImplementedError:
        return None, "not attempted yet: replace the stub with your code and run the check again."
    except Exception as err:  # a learner's bug is reported, not raised
        if "ellipsis" in str(err):   # arithmetic on a `...` hole: TypeError, AttributeError
            return None, HOLES
        got, problem = None, _raised(fn, err)
    if _has_holes(got):
        return None, HOLES if not ex.value else "not finished yet: replace the `...` with your number."
    if problem is None and got is None and not ex.value:
        if _source_has_holes(fn):   # a skeleton whose holes are statements (`...` alone) returns None
            return None, HOLES
        problem = "your function returned None: did you forget the `return` statement?"
    changes = [c for m, b in zip(models, before) for c in _model_changes(b, m)]
    problem = problem or (f"your function {'; it also '.join(changes)}." if changes else None)
    if problem is None:
        try:
            problem = ex.grade(args, got) if ex.grade else _compare(got, want, ex)
        except Exception as err:  # a grader fed a strange answer: still a verdict, never a traceback
            problem = f"your answer could not be graded ({type(err).__name__}: {str(err).strip().splitlines()[0]})."
    if problem is not None and not ex.value and _source_has_holes(fn):
        return None, HOLES   # a skeleton with holes left: say so, not what its unfinished answer gets wrong
    return problem, None


def check(name: str, fn: Callable[..., torch.Tensor] | Any, *, verbose: bool = True) -> bool:
    """Run ``fn`` and the reference of exercise ``name`` on seeded cases; print a verdict; True if they agree.

    A learner's mistake never raises here: it is reported in one line with the exercise's hint. ``fn`` is the
    learner's function, or for an exercise whose answer is a value (``area_weight``) that value. An exercise
    with a ``wrap`` (``straight_through``: :func:`exercise_catalogue.with_gradient`) wraps ``fn`` unless it already
    is. Handing in the library's own function (the reference, or anything defined in ``actmatch_lite``) fails.
    """
    if name not in EXERCISES:
        raise KeyError(f"unknown exercise {name!r}; known: {', '.join(sorted(EXERCISES))}")
    ex = EXERCISES[name]
    say = print if verbose else (lambda *_: None)
    if not ex.value:
        if not callable(fn):
            say(f"[{name}] expected your function (e.g. my_{name}), got a {type(fn).__name__}: pass the function "
                "itself, without calling it.")
            return False
        if _from_the_library(fn, ex):
            say(f"[{name}] that is the library's own function: write your own.")
            return False
        if ex.wrap is not None and not getattr(fn, "with_gradient", False):
            fn = ex.wrap(fn)
    gen = torch.Generator().manual_seed(SEED)
    cases = ex.cases or CASES
    for case in range(cases):
        args = ex.make_args(gen)
        problem, unfinished = _case(ex, fn, args)
        if unfinished:
            say(f"[{name}] {unfinished}")
            return False
        if problem is not None:
            where = f"case {case + 1}/{cases}" if cases > 1 else ""
            where += f" ({ex.settings(args)})" if ex.settings else ""
            say(f"[{name}] {where.strip() + ': ' if where else ''}{problem} Hint: {ex.hint}")
            return False
    say(f"[{name}] correct on all {cases} case{'s' * (cases != 1)}. Well done!" if not ex.grade else
        f"[{name}] passes: {ex.passed}. Well done!")
    return True


def solution_or_library(name: str, fn: Callable | Any) -> Callable | Any:
    """``fn`` if it passes :func:`check` (run quietly), else the library's answer to exercise ``name``.

    Later cells of a notebook use what this returns, so a student copy with an unsolved exercise still runs top to
    bottom; when it falls back it prints one line saying so. Never raises on a learner's answer (an unknown
    exercise name, a bug of the notebook, raises ``KeyError``).
    """
    ex = EXERCISES[name]
    try:
        ok = check(name, fn, verbose=False)
    except Exception:  # noqa: BLE001 -- whatever the learner handed in, the notebook goes on
        ok = False
    if ok:
        return fn
    label = getattr(fn, "__name__", None) if callable(fn) else None
    mine = f"your {label}" if label and label != "<lambda>" else f"your answer to {name}"
    library = ex.library if ex.library is not None else ex.reference
    shown = f"value {library!r}" if ex.value else name
    print(f"{mine} is not finished yet: the cells below use the library's {shown}.")
    return library

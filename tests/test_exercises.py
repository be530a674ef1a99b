"""The exercise catalogue: every check accepts the library's answer, rejects a plausible wrong one, reports
an unsolved stub politely; student copies of a notebook run from top to bottom."""
from __future__ import annotations

import math
from pathlib import Path

import nbformat
import pytest
import torch
import torch.nn.functional as F

from actmatch_lite.evaluation import metrics
from actmatch_lite.interface import notebook_tools as nbt
from actmatch_lite.interface.exercise_catalogue import (EXERCISES, deletion_auc, necessity_loss, record_layer,
                                                        with_gradient)
from actmatch_lite.interface.exercises import check, exercises
from actmatch_lite.method import losses
from actmatch_lite.method.fill import apply_mask
from actmatch_lite.method.masknet import straight_through

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
STUDENT_NOTEBOOK = "01_frozen_classifier_and_activations.ipynb"   # short: no mask training


def _tv_without_diagonal_weight(m, neighbours=8):
    m = m[:, 0]
    tv = (m[:, 1:] - m[:, :-1]).abs().flatten(1).mean(1) + (m[:, :, 1:] - m[:, :, :-1]).abs().flatten(1).mean(1)
    if neighbours == 8:
        tv = tv + (m[:, 1:, 1:] - m[:, :-1, :-1]).abs().flatten(1).mean(1) \
                + (m[:, 1:, :-1] - m[:, :-1, 1:]).abs().flatten(1).mean(1)
    return tv


def _tv_squared(m, neighbours):
    m = m[:, 0]
    pairs = [(m[:, 1:], m[:, :-1], 1.0), (m[:, :, 1:], m[:, :, :-1], 1.0)]
    if neighbours == 8:
        pairs += [(m[:, 1:, 1:], m[:, :-1, :-1], 2 ** -0.5), (m[:, 1:, :-1], m[:, :-1, 1:], 2 ** -0.5)]
    return sum(w * (a - b).pow(2).flatten(1).mean(1) for a, b, w in pairs)


def _tv_wrapping(m, neighbours):             # torch.roll pairs the last row with the first
    dv, dh = (m - m.roll(1, 2)).abs(), (m - m.roll(1, 3)).abs()
    tv = dv.flatten(1).mean(1) + dh.flatten(1).mean(1)
    if neighbours == 8:
        diagonals = (m - m.roll((1, 1), (2, 3))).abs() + (m - m.roll((1, -1), (2, 3))).abs()
        tv = tv + diagonals.flatten(1).mean(1) / 2 ** 0.5
    return tv


def _record(model, x, layer, *, clone=True, what="output", remove=True):
    box = []

    def hook(_module, inputs, out):
        value = out if what == "output" else inputs[0]
        box.append(value.clone() if clone else value)

    handle = model.get_submodule(layer).register_forward_hook(hook)
    try:
        with torch.no_grad():
            model(x)
    finally:
        if remove:
            handle.remove()
    return box[0]


def _record_with_a_zeroing_hook(model, x, layer):
    """Leaves a hook that rewrites the layer's output to zeros and answers zeros: passes only if the reference
    runs after it on the same model."""
    model.get_submodule(layer).register_forward_hook(lambda _m, _i, out: torch.zeros_like(out))
    return _record(model, x, layer)


def _record_then_train(model, x, layer):
    out = _record(model, x, layer)
    model.train()
    return out


def _record_then_unfreeze(model, x, layer):
    out = _record(model, x, layer)
    for p in model.parameters():
        p.requires_grad_(not p.requires_grad)
    return out


def _cosine_over_all_values(a_x, a_e):
    return 1 - F.cosine_similarity(a_x.flatten(1), a_e.flatten(1), dim=1)


def _std_mse(a_x, a_e, *, dim=2, unbiased=False):
    def z(a):
        a = a.flatten(2)
        return (a - a.mean(dim, keepdim=True)) / torch.sqrt(a.var(dim, unbiased=unbiased, keepdim=True) + 1e-6)
    return (z(a_x) - z(a_e)).pow(2).flatten(1).mean(1)


def _ce_at(z, y):
    return -z.log_softmax(1).gather(1, y[:, None])[:, 0]


def _necessity_at(clf, x, m, keep):
    with torch.no_grad():
        return (clf((m if keep else ~m).float() * x).argmax(1) != clf(x).argmax(1)).float()


def _deletion(clf, x, scores, steps, *, counts=None, current_argmax=False, area="trapezoid"):
    b, n = x.shape[0], x[0, 0].numel()
    counts = counts or (lambda s: (2 * s * n + steps) // (2 * steps))
    with torch.no_grad():
        y = clf(x).argmax(1)
        order = torch.argsort(-scores.flatten(1), dim=1, stable=True)
        ks = torch.tensor([counts(s) for s in range(steps + 1)])
        ps = []
        for k in ks.tolist():
            keep = torch.ones(b, n).scatter(1, order[:, :k], 0.0).view(b, 1, *x.shape[-2:])
            p = clf(x * keep).softmax(1)
            ps.append(p.max(1).values if current_argmax else p.gather(1, y[:, None])[:, 0])
    p, t = torch.stack(ps, 1), ks.float() / n
    if area == "left":
        return (p[:, :-1] * (t[1:] - t[:-1])).sum(1)
    if area == "mean":
        return p.mean(1)
    return torch.trapezoid(p, t, dim=1)


def _recall(explanations, instances, *, iou=0.3, precision=0.7, guard=True, one_to_one=True, per_explanation=False):
    from scipy.optimize import linear_sum_assignment
    out = []
    for e, g in zip(explanations, instances):
        e, g = e.flatten(1).float(), g.flatten(1).float()
        inter = e @ g.T
        union = e.sum(1)[:, None] + g.sum(1)[None] - inter
        ok = (inter >= iou * union) | (inter >= precision * e.sum(1)[:, None])
        ok = ok & (inter > 0) if guard else ok
        if one_to_one:
            rows, cols = linear_sum_assignment(ok.numpy(), maximize=True)
            hits = float(ok.numpy()[rows, cols].sum())
        else:
            hits = float(ok.any(0).sum())
        out.append(hits / (len(e) if per_explanation else len(g)))
    return torch.tensor(out)


def _pointing_argmax_only(s, gt):
    return gt.flatten(1).float().gather(1, s.flatten(1).argmax(1, keepdim=True))[:, 0]


def _pointing_any_max(s, gt):
    flat = s.flatten(1)
    top = flat == flat.max(1, keepdim=True).values
    return (top & gt.flatten(1)).any(1).float()


def _iou_without_empty_case(m, gt):
    return (m & gt).flatten(1).sum(1).float() / (m | gt).flatten(1).sum(1).float()


# typical wrong answers per exercise: what a learner gets wrong, and the function they would write
WRONG = {
    "apply_mask": {
        "fill added without (1 - m)": lambda x, m, fill: m * x + fill,
        "mask and complement swapped": lambda x, m, fill: (1 - m) * x + m * fill,
        "fill ignored": lambda x, m, fill: m * x,
    },
    "record_layer": {
        "no clone (in-place ReLU overwrites conv1)": lambda model, x, layer: _record(model, x, layer, clone=False),
        "records the layer's input": lambda model, x, layer: _record(model, x, layer, what="input"),
        "leaks its hook": lambda model, x, layer: _record(model, x, layer, remove=False),
        "leaked hook zeroes the output": _record_with_a_zeroing_hook,
        "leaves the model in training mode": _record_then_train,
        "flips requires_grad": _record_then_unfreeze,
    },
    "cross_entropy_loss": {
        "a mean, not per image": lambda z, y: F.cross_entropy(z, y),
        "ignores target (uses the argmax)": lambda z, y: _ce_at(z, z.argmax(1)),
        "sign error": lambda z, y: -_ce_at(z, y),
        "no log-softmax": lambda z, y: -z.gather(1, y[:, None])[:, 0],
    },
    "kl_loss": {
        "without T²": lambda zx, ze, t: losses.kl_loss(zx, ze, t) / t ** 2,
        "T instead of T²": lambda zx, ze, t: losses.kl_loss(zx, ze, t) / t,
        "reversed KL": lambda zx, ze, t: losses.kl_loss(ze, zx, t),
        "logits not divided by T": lambda zx, ze, t: t ** 2 * losses.kl_loss(zx, ze, 1.0),
    },
    "cosine_distance": {
        "cosine over all values": _cosine_over_all_values,
        "cosine over locations, not channels": lambda a_x, a_e: 1 - F.cosine_similarity(
            a_x.flatten(2), a_e.flatten(2), dim=2).mean(1),
        "the similarity, not 1 - it": lambda a_x, a_e: F.cosine_similarity(a_x, a_e, dim=1).flatten(1).mean(1),
    },
    "std_mse_distance": {
        "standardised over channels": lambda a_x, a_e: _std_mse(a_x, a_e, dim=1),
        "unbiased variance": lambda a_x, a_e: _std_mse(a_x, a_e, unbiased=True),
        "no standardisation": lambda a_x, a_e: losses.mse_distance(a_x, a_e),
    },
    "area_loss": {
        "a sum, not the mean": lambda m: m.flatten(1).sum(1),
        "one mean over the batch": lambda m: m.mean(),
    },
    "area_excess_loss": {
        "no clamp": lambda m, a: m.flatten(1).mean(1) - a,
        "sign error": lambda m, a: (a - m.flatten(1).mean(1)).clamp_min(0),
        "a sum, not the mean": lambda m, a: (m.flatten(1).sum(1) - a).clamp_min(0),
    },
    "straight_through": {
        "no detach: gradient 0": with_gradient(lambda m, t: m + ((m > t).float() - m)),
        "hard mask only": with_gradient(lambda m, t: (m > t).float()),
        "detached straight-through": with_gradient(lambda m, t: (m + ((m > t).float() - m)).detach()),
        "threshold ignored (0.5)": with_gradient(lambda m, t: m + ((m > 0.5).float() - m).detach()),
        ">= instead of >": with_gradient(lambda m, t: m + ((m >= t).float() - m).detach()),
    },
    "binarisation_loss": {
        "the paper's sum, not the mean": lambda m: (m - m ** 2).abs().flatten(1).sum(1),
        "sign error": lambda m: (m ** 2 - m).flatten(1).mean(1),
    },
    "tv_loss": {
        "diagonals without 1/√2": _tv_without_diagonal_weight,
        "always 4 neighbours": lambda m, neighbours: losses.tv_loss(m, 4),
        "always 8 neighbours": lambda m, neighbours: losses.tv_loss(m, 8),
        "squared differences": _tv_squared,
        "wrap-around neighbours": _tv_wrapping,
    },
    "robustness_loss": {
        "averages the logits first": lambda z, y: F.cross_entropy(z.mean(0), y, reduction="none"),
        "ignores target (uses the argmax)": lambda z, y: torch.stack([_ce_at(zk, zk.argmax(1)) for zk in z]).mean(0),
        "targets repeated in the wrong order": lambda z, y: F.cross_entropy(
            z.flatten(0, 1), y.repeat_interleave(len(z)), reduction="none").view(len(z), -1).mean(0),
    },
    "necessity_loss": {
        "no hinge": lambda zx, zc, y, margin: margin - (zx - zc).gather(1, y[:, None])[:, 0],
        "sign error": lambda zx, zc, y, margin: (margin - (zc - zx).gather(1, y[:, None])[:, 0]).clamp_min(0),
        "ignores target (uses the argmax)": lambda zx, zc, y, margin: (
            margin - (zx - zc).gather(1, zx.argmax(1, keepdim=True))[:, 0]).clamp_min(0),
        "clamps the drop, not the loss": lambda zx, zc, y, margin: margin - (
            zx - zc).gather(1, y[:, None])[:, 0].clamp_min(0),
    },
    "necessity": {
        "sufficiency instead": lambda clf, x, m: metrics.sufficiency(clf, x, m),
        "keeps the mask instead of removing it": lambda clf, x, m: _necessity_at(clf, x, m, keep=True),
        "always 0": lambda clf, x, m: torch.zeros(len(x)),
    },
    "sufficiency": {
        "necessity instead": lambda clf, x, m: metrics.necessity(clf, x, m),
        "removes the mask instead of keeping it": lambda clf, x, m: 1 - _necessity_at(clf, x, m, keep=False),
        "always 1": lambda clf, x, m: torch.ones(len(x)),
    },
    "iou": {
        "precision instead": lambda m, gt: metrics.precision(m, gt),
        "no empty case (0/0 = NaN)": _iou_without_empty_case,
        "intersection over gt": lambda m, gt: (m & gt).flatten(1).sum(1) / gt.flatten(1).sum(1).clamp_min(1),
    },
    "pointing_game": {
        "argmin": lambda s, gt: gt.flatten(1).float().gather(1, s.flatten(1).argmin(1, keepdim=True))[:, 0],
        "argmax only, ties ignored": _pointing_argmax_only,
        "any maximum on gt": _pointing_any_max,
    },
    "deletion_auc": {
        "left Riemann sum": lambda clf, x, s, steps: _deletion(clf, x, s, steps, area="left"),
        "mean of the curve": lambda clf, x, s, steps: _deletion(clf, x, s, steps, area="mean"),
        "lowest scores first": lambda clf, x, s, steps: _deletion(clf, x, -s, steps),
        "floor instead of round": lambda clf, x, s, steps: _deletion(
            clf, x, s, steps, counts=lambda k: k * x[0, 0].numel() // steps),
        "current argmax, not y*": lambda clf, x, s, steps: _deletion(clf, x, s, steps, current_argmax=True),
    },
    "instance_recall": {
        "any match, not one-to-one": lambda e, g: _recall(e, g, one_to_one=False),
        "IoU only": lambda e, g: _recall(e, g, precision=2.0),
        "precision only": lambda e, g: _recall(e, g, iou=2.0),
        "empty explanation matches": lambda e, g: _recall(e, g, guard=False),
        "divides by the explanations": lambda e, g: _recall(e, g, per_explanation=True),
    },
}
WRONG_CASES = [(name, label) for name, answers in sorted(WRONG.items()) for label in answers]


def _correct(name):
    if name == "straight_through":
        return with_gradient(straight_through)
    return EXERCISES[name].reference


def _stub(*_args):
    raise NotImplementedError("your code here")


def test_every_exercise_has_a_wrong_answer_here():
    assert set(exercises()) == set(WRONG)


@pytest.mark.parametrize("name", sorted(WRONG))
def test_check_accepts_the_reference(name, capsys):
    assert check(name, _correct(name)) is True
    assert "correct" in capsys.readouterr().out


@pytest.mark.parametrize(("name", "label"), WRONG_CASES)
def test_check_rejects_typical_wrong_answers(name, label, capsys):
    assert check(name, WRONG[name][label]) is False, f"{name}: {label!r} passed"
    assert "Hint:" in capsys.readouterr().out


def _returning(name, value):
    """A learner's function that ignores its arguments and returns ``value(reference answer)``."""
    def answer(*args):
        return value(_correct(name)(*args))
    return answer


@pytest.mark.parametrize("name", sorted(WRONG))
def test_a_forgotten_return_gets_a_verdict_not_a_traceback(name, capsys):
    def forgot_return(*_args):
        pass
    fn = with_gradient(forgot_return) if name == "straight_through" else forgot_return
    assert check(name, fn) is False
    out = capsys.readouterr().out
    assert "your function returned None" in out and "`return`" in out and "Hint:" in out


@pytest.mark.parametrize("name", sorted(WRONG))
def test_a_wrong_type_gets_a_verdict(name, capsys):
    fn = (lambda *_args: torch.nn.Linear(1, 1))
    assert check(name, with_gradient(fn) if name == "straight_through" else fn) is False
    assert "your function returned a Linear, expected a tensor of shape" in capsys.readouterr().out


@pytest.mark.parametrize("name", sorted(set(WRONG) - {"straight_through"}))
def test_a_wrong_shape_dtype_or_nan_gets_a_verdict(name, capsys):
    assert check(name, _returning(name, lambda want: want[None])) is False
    assert "your function returned shape (1, " in capsys.readouterr().out
    assert check(name, _returning(name, lambda want: want.to(torch.int64))) is False
    assert "dtype torch.int64, expected a floating-point tensor like torch.float32 (convert with " \
           ".to(torch.float32))." in capsys.readouterr().out
    assert check(name, _returning(name, lambda want: want.clone().fill_(math.nan))) is False
    assert "NaN at index (0" in capsys.readouterr().out


def test_a_learners_exception_is_shown_in_one_line_with_its_place(capsys):
    message = "first line\nhidden detail"

    def my_area(m_soft):
        raise ValueError(message)
    assert check("area_loss", my_area) is False
    out = capsys.readouterr().out
    assert "your function raised ValueError: first line (in my_area, line " in out
    assert ": raise ValueError(message))." in out
    assert "hidden detail" not in out and "Traceback" not in out


def test_straight_through_of_the_wrong_shape_is_named(capsys):
    assert check("straight_through", with_gradient(lambda m, t: (m > t).float()[:, 0])) is False
    assert "must return a tensor shaped like m_soft (2, 1, 7, 9), got (2, 7, 9)" in capsys.readouterr().out


@pytest.mark.parametrize(("label", "says"), [
    ("leaks its hook", "left 1 hook on the model (on '"),
    ("leaked hook zeroes the output", "left 1 hook on the model"),
    ("leaves the model in training mode", "left the model in training mode"),
    ("flips requires_grad", "changed requires_grad"),
])
def test_record_layer_names_what_the_learner_left_behind(label, says, capsys):
    assert check("record_layer", WRONG["record_layer"][label]) is False
    assert says in capsys.readouterr().out


def test_the_reference_is_not_fooled_by_a_leaked_hook(capsys):
    """The reference runs on a copy, first: a hook the learner leaves cannot rewrite the expected answer."""
    assert check("record_layer", _record_with_a_zeroing_hook) is False
    out = capsys.readouterr().out
    assert "differ" in out or "hook" in out


def _solution_cells():
    """(notebook, exercise cell sources, check cell) for every exercise of the notebooks."""
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        solutions = [c.source for c in nb.cells if c.cell_type == "code" and nbt.has_solution(c.source)]
        for cell in nb.cells:
            if cell.cell_type == "code" and cell.source.startswith("check(\""):
                yield path.name, solutions, cell


@pytest.mark.parametrize(("notebook", "solutions", "cell"), list(_solution_cells()),
                         ids=lambda v: v if isinstance(v, str) else "")
def test_notebook_solutions_still_pass_with_their_committed_verdict(notebook, solutions, cell, capsys):
    namespace = {"torch": torch, "F": F, "nn": torch.nn, "check": check, "with_gradient": with_gradient}
    for source in solutions:
        exec(compile(source, f"<{notebook}>", "exec"), namespace)
    assert eval(cell.source, namespace) is True
    committed = "".join(o.get("text", "") for o in cell.outputs if o.get("output_type") == "stream")
    assert capsys.readouterr().out == committed


@pytest.mark.parametrize("name", sorted(WRONG))
def test_check_reports_an_unsolved_stub_without_raising(name, capsys):
    assert check(name, _stub) is False
    assert "not attempted yet" in capsys.readouterr().out


def test_references_are_the_library():
    assert EXERCISES["tv_loss"].reference is losses.tv_loss
    assert EXERCISES["apply_mask"].reference is apply_mask
    assert EXERCISES["iou"].reference is metrics.iou


def test_with_gradient_sees_the_straight_through_gradient():
    m_soft = torch.tensor([[[[0.2, 0.7]]]])
    value, grad = with_gradient(straight_through)(m_soft, 0.5)
    assert torch.equal(value, torch.tensor([[[[0.0, 1.0]]]]))
    assert (grad > 0).all()                                  # identity times a positive upstream weight
    _, grad_hard = with_gradient(lambda m, t: (m > t).float())(m_soft, 0.5)
    assert torch.equal(grad_hard, torch.zeros_like(m_soft))  # no path, no gradient


def test_positional_wrappers_match_the_library():
    zx, zc, y = torch.tensor([[3.0, 0.0]]), torch.tensor([[2.5, 0.0]]), torch.tensor([0])
    assert torch.allclose(necessity_loss(zx, zc, y, 1.0), torch.tensor([0.5]))
    gen = torch.Generator().manual_seed(0)
    clf = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
    x, s = torch.rand(1, 1, 2, 2, generator=gen), torch.rand(1, 1, 2, 2, generator=gen)
    assert torch.allclose(deletion_auc(clf, x, s, 4), metrics.deletion_auc(clf, x, s, steps=4))
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 1, 1), torch.nn.ReLU(inplace=True))
    torch.nn.init.ones_(model[0].weight), torch.nn.init.zeros_(model[0].bias)
    x = torch.tensor([[[[-1.0, 2.0]]]])
    assert torch.equal(record_layer(model, x, "0"), x)         # pre-ReLU values survive the in-place ReLU


def test_every_exercise_cell_in_the_notebooks_names_a_registered_check():
    names = set(exercises())
    for path in sorted(NOTEBOOKS.glob("0[0-6]_*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code" and "check(\"" in cell.source:
                called = cell.source.split("check(\"", 1)[1].split("\"", 1)[0]
                assert called in names, f"{path.name} checks unknown exercise {called!r}"


def test_strip_solutions_round_trip():
    source = ("def f(x):\n    y = x + 1\n    # BEGIN SOLUTION\n    return y * 2\n    # END SOLUTION\n\n"
              "def g():\n        # BEGIN SOLUTION\n        return 3\n        # END SOLUTION")
    stripped = nbt.strip_solutions(source)
    assert "return y * 2" not in stripped and "return 3" not in stripped
    assert "    raise NotImplementedError" in stripped and "        raise NotImplementedError" in stripped
    assert nbt.strip_solutions(stripped) == stripped           # idempotent
    assert not nbt.has_solution(stripped) and nbt.has_solution(source)
    namespace = {}
    exec(compile(stripped, "<student>", "exec"), namespace)   # still valid Python
    with pytest.raises(NotImplementedError):
        namespace["f"](1)
    with pytest.raises(ValueError):
        nbt.strip_solutions("# BEGIN SOLUTION\nx = 1")


def test_every_notebook_exercise_has_a_solution_block():
    for path in sorted(NOTEBOOKS.glob("0[0-6]_*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        assert any(c.cell_type == "code" and nbt.has_solution(c.source) for c in nb.cells), path.name


@pytest.mark.slow
def test_student_copy_runs_through(tmp_path):
    nb = nbformat.read(NOTEBOOKS / STUDENT_NOTEBOOK, as_version=4)
    student = nbt.student_copy(nb)
    assert all(not nbt.has_solution(c.source) for c in student.cells if c.cell_type == "code")
    path = tmp_path / STUDENT_NOTEBOOK
    nbformat.write(student, path)
    done, seconds = nbt.execute(path, cwd=NOTEBOOKS, allow_errors=False)
    printed = "".join(o.get("text", "") for c in done.cells if c.cell_type == "code" for o in c.outputs)
    assert "not attempted yet" in printed
    assert math.isfinite(seconds)

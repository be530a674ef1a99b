"""The exercise catalogue: every check accepts a correct answer, rejects plausible wrong ones and the library's
own function, reports an unsolved stub or ``...`` holes politely; ``solution_or_library`` falls back to the
library; student copies keep their STUB skeletons and run from top to bottom."""
from __future__ import annotations

import math
import time
from pathlib import Path

import nbformat
import pytest
import torch
import torch.nn.functional as F

from actmatch_lite.evaluation import metrics
from actmatch_lite.interface import notebook_tools as nbt
from actmatch_lite.interface.exercise_behaviour import AREA_LIMIT, area_weight_outcome, vacuous_sufficiency
from actmatch_lite.interface.exercise_catalogue import (EXERCISES, deletion_auc, necessity_loss, record_layer,
                                                        with_gradient)
from actmatch_lite.interface.exercises import check, exercises, solution_or_library
from actmatch_lite.method import losses
from actmatch_lite.method.fill import apply_mask
from actmatch_lite.method.masknet import straight_through

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


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


def _empty_mask(x, dtype=torch.bool):
    return torch.zeros(len(x), 1, *x.shape[-2:], dtype=dtype)


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
    "vacuous_sufficiency": {
        "the image's own class, full mask (sufficient, not vacuous)": lambda clf, x, fill: (
            ~_empty_mask(x), clf(x).argmax(1)),
        "the fill's class, full mask (not even sufficient)": lambda clf, x, fill: (
            ~_empty_mask(x), clf(fill).argmax(1)),
        "the image's own class, empty mask": lambda clf, x, fill: (_empty_mask(x), clf(x).argmax(1)),
        "a soft mask of 0.5": lambda clf, x, fill: (_empty_mask(x, torch.float) + 0.5, clf(fill).argmax(1)),
    },
}
VALUE_EXERCISES = {"area_weight"}                                   # answered by a number: tested below (slow)
COMPARED = sorted(n for n in WRONG if EXERCISES[n].grade is None)   # graded by equality with the reference
WRONG_CASES = [(name, label) for name, answers in sorted(WRONG.items()) for label in answers]


def _correct(name):
    """A correct learner's answer: the reference called from a function of this module (not the library's own)."""
    library = EXERCISES[name].library or EXERCISES[name].reference
    if name == "straight_through":
        library = straight_through

    def mine(*args):
        return library(*args)
    return with_gradient(mine) if name == "straight_through" else mine


def _stub(*_args):
    raise NotImplementedError("your code here")


def test_every_exercise_has_a_wrong_answer_here():
    assert set(exercises()) == set(WRONG) | VALUE_EXERCISES


@pytest.mark.parametrize("name", sorted(WRONG))
def test_check_accepts_the_reference(name, capsys):
    assert check(name, _correct(name)) is True
    assert "Well done" in capsys.readouterr().out


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


@pytest.mark.parametrize("name", COMPARED)
def test_a_wrong_type_gets_a_verdict(name, capsys):
    fn = (lambda *_args: torch.nn.Linear(1, 1))
    assert check(name, with_gradient(fn) if name == "straight_through" else fn) is False
    assert "your function returned a Linear, expected a tensor of shape" in capsys.readouterr().out


@pytest.mark.parametrize("name", sorted(set(COMPARED) - {"straight_through"}))
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
        # a solution cell that checks itself (a value exercise: area_weight) is left to its slow test below
        solutions = [c.source for c in nb.cells
                     if c.cell_type == "code" and nbt.has_solution(c.source) and 'check("' not in c.source]
        # the notebook's imports (one-line import statements at the top level of any code cell) come first
        imports = "\n".join(line for c in nb.cells if c.cell_type == "code" for line in c.source.splitlines()
                             if line.startswith(("import ", "from ")) and not line.rstrip().endswith(("(", "\\")))
        for cell in nb.cells:
            if cell.cell_type == "code" and cell.source.startswith("check(\""):
                yield path.name, [imports, *solutions], cell


@pytest.mark.parametrize(("notebook", "solutions", "cell"), list(_solution_cells()),
                         ids=lambda v: v if isinstance(v, str) else "")
def test_notebook_solutions_still_pass_with_their_committed_verdict(notebook, solutions, cell, capsys):
    namespace = {"torch": torch, "F": F, "nn": torch.nn, "math": math, "check": check, "with_gradient": with_gradient}
    for source in solutions:
        exec(compile(source, f"<{notebook}>", "exec"), namespace)
    capsys.readouterr()                                                  # what the solution cells print
    assert eval(cell.source.splitlines()[0], namespace) is True          # the cell's first line is the check
    committed = "".join(o.get("text", "") for o in cell.outputs if o.get("output_type") == "stream")
    assert committed.startswith(capsys.readouterr().out)


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
    for path in sorted(NOTEBOOKS.glob("[0-9]*.ipynb")):
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


def test_every_notebook_has_a_coding_exercise_with_a_solution_block_and_a_check():
    for path in sorted(NOTEBOOKS.glob("[0-9]*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        assert any(c.cell_type == "code" and nbt.has_solution(c.source) for c in nb.cells), path.name
        assert any(c.cell_type == "code" and 'check("' in c.source for c in nb.cells), path.name


@pytest.fixture(scope="module")
def student_copies(tmp_path_factory):
    """Every notebook's student copy, written as `make student` writes them."""
    out = tmp_path_factory.mktemp("student")
    return {p.name: p for p in nbt.write_student_copies(sorted(NOTEBOOKS.glob("[0-9]*.ipynb")), out)}


def test_student_copies_hold_no_solution(student_copies):
    for name, path in student_copies.items():
        nb = nbformat.read(path, as_version=4)
        assert all(not nbt.has_solution(c.source) for c in nb.cells if c.cell_type == "code"), name


@pytest.mark.slow
@pytest.mark.parametrize("notebook", sorted(p.name for p in NOTEBOOKS.glob("[0-9]*.ipynb")))
def test_student_copy_runs_top_to_bottom(notebook, student_copies):
    """An unsolved student copy runs through: each unsolved exercise gets its polite verdict, later cells fall
    back to the library (solution_or_library), and no cell raises."""
    done, seconds = nbt.execute(student_copies[notebook], cwd=NOTEBOOKS, allow_errors=True)
    errors = [(i, o.get("ename"), o.get("evalue")) for i, c in enumerate(done.cells) if c.cell_type == "code"
              for o in c.outputs if o.get("output_type") == "error"]
    assert not errors, f"{notebook}: cells raised {errors}"
    printed = "".join(o.get("text", "") for c in done.cells if c.cell_type == "code" for o in c.outputs)
    assert "not attempted yet" in printed or "not finished yet" in printed, f"{notebook}: no unsolved exercise"
    assert math.isfinite(seconds)


# -- `...` holes, the library's own function, settings in verdicts, solution_or_library --------------------
def _holes_returned(*_args):
    return ...


def _holes_in_arithmetic(m_soft, *_args):
    return ... * m_soft                     # TypeError: unsupported operand type(s) for *: 'ellipsis' and 'Tensor'


def _holes_in_a_method(*_args):
    return (...).mean(1)                    # AttributeError: 'ellipsis' object has no attribute 'mean'


@pytest.mark.parametrize("stub", [_holes_returned, _holes_in_arithmetic, _holes_in_a_method])
@pytest.mark.parametrize("name", ["area_loss", "tv_loss", "straight_through", "vacuous_sufficiency"])
def test_holes_left_in_a_skeleton_get_one_polite_line(name, stub, capsys):
    assert check(name, stub) is False
    out = capsys.readouterr().out
    assert out == f"[{name}] not finished yet: fill in the `...` holes with your code, then run the check again.\n"


def _holes_as_statements(explanations, instances):
    """A skeleton whose holes are statements: it returns None."""
    ...   # the (E, N) table of matching pairs, the assignment, matches / N


def _indexing_with_an_ellipsis(m_soft):
    m_soft[..., 0]                          # an Ellipsis inside [] is indexing, not a hole: a forgotten return


def test_a_skeleton_returning_none_with_holes_gets_the_polite_line(capsys):
    assert check("instance_recall", _holes_as_statements) is False
    assert "fill in the `...` holes" in capsys.readouterr().out
    assert check("area_loss", _indexing_with_an_ellipsis) is False
    assert "did you forget the `return` statement?" in capsys.readouterr().out


def _loop_with_a_hole(explanations, instances):
    out = []
    for e, g in zip(explanations, instances): ...  # the student copy of notebook 08: the loop body is a hole
    return torch.tensor(out)


def test_a_skeleton_whose_holes_give_a_wrong_answer_gets_the_polite_line(capsys):
    assert check("instance_recall", _loop_with_a_hole) is False
    out = capsys.readouterr().out
    assert "fill in the `...` holes" in out and "shape" not in out


def test_a_pair_of_holes_gets_the_polite_line(capsys):
    assert check("vacuous_sufficiency", lambda clf, x, fill: (..., ...)) is False
    assert "fill in the `...` holes" in capsys.readouterr().out


@pytest.mark.parametrize("name", sorted(WRONG))
def test_the_librarys_own_function_is_refused(name, capsys):
    ex = EXERCISES[name]
    assert check(name, ex.reference) is False
    assert capsys.readouterr().out == f"[{name}] that is the library's own function: write your own.\n"
    if ex.library is not None:
        assert check(name, ex.library) is False


@pytest.mark.parametrize(("name", "fn"), [
    ("cosine_distance", losses.cosine_distance),
    ("area_loss", losses.binarisation_loss),        # any function the package defines, not only the reference
    ("sufficiency", metrics.sufficiency),
    ("straight_through", with_gradient(straight_through)),
])
def test_any_library_function_is_refused(name, fn, capsys):
    assert check(name, fn) is False
    assert "the library's own function" in capsys.readouterr().out


@pytest.mark.parametrize(("name", "label", "says"), [
    ("kl_loss", "T instead of T²", "(T = "),
    ("tv_loss", "always 4 neighbours", "(neighbours = 8)"),
    ("straight_through", "threshold ignored (0.5)", "(threshold = "),
    ("necessity_loss", "no hinge", "(margin = "),
])
def test_a_failing_case_names_its_settings(name, label, says, capsys):
    assert check(name, WRONG[name][label]) is False
    assert says in capsys.readouterr().out


@pytest.mark.parametrize(("label", "part"), [
    ("no detach: gradient 0", "the GRADIENTS differ"),
    ("detached straight-through", "the GRADIENTS differ"),
    ("threshold ignored (0.5)", "the VALUES differ"),
    (">= instead of >", "the VALUES differ"),
])
def test_straight_through_says_whether_values_or_gradients_differ(label, part, capsys):
    assert check("straight_through", WRONG["straight_through"][label]) is False
    out = capsys.readouterr().out
    assert part in out and "index (0, 0" in out      # the index is inside the part, not into the stack


def test_straight_through_wraps_a_plain_function_itself(capsys):
    def my_straight_through(m_soft, threshold):
        return m_soft + ((m_soft > threshold).float() - m_soft).detach()
    assert check("straight_through", my_straight_through) is True
    assert check("straight_through", with_gradient(my_straight_through)) is True


def test_solution_or_library_returns_a_passing_function_silently(capsys):
    mine = _correct("area_loss")
    assert solution_or_library("area_loss", mine) is mine
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(("name", "fn"), [
    ("area_loss", _stub), ("area_loss", _holes_returned), ("area_loss", WRONG["area_loss"]["a sum, not the mean"]),
    ("area_loss", losses.area_loss), ("area_loss", None), ("straight_through", _stub),
    ("vacuous_sufficiency", _holes_returned),
])
def test_solution_or_library_falls_back_in_one_line(name, fn, capsys):
    got = solution_or_library(name, fn)
    expected = {"straight_through": straight_through, "vacuous_sufficiency": vacuous_sufficiency}
    assert got is expected.get(name, losses.area_loss)
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "is not finished yet: the cells below use the library's" in out
    assert "Traceback" not in out


def test_solution_or_library_names_the_learners_function(capsys):
    def my_area(m_soft):
        raise NotImplementedError
    solution_or_library("area_loss", my_area)
    assert capsys.readouterr().out == "your my_area is not finished yet: the cells below use the library's " \
                                      "area_loss.\n"


def test_solution_or_library_hands_back_the_library_value_for_an_unfinished_number(capsys):
    assert solution_or_library("area_weight", ...) == EXERCISES["area_weight"].reference
    assert "the library's value" in capsys.readouterr().out


def test_a_function_is_expected_not_its_result(capsys):
    assert check("area_loss", torch.zeros(2)) is False
    assert "pass the function itself" in capsys.readouterr().out


# -- behaviour-graded exercises ------------------------------------------------------------------------------
def test_vacuous_sufficiency_reference_passes_and_cases_separate_the_wrong_answers(capsys):
    def my_vacuous(clf, x, fill):
        with torch.no_grad():
            return torch.zeros(len(x), 1, *x.shape[-2:], dtype=torch.bool), clf(fill).argmax(1)
    assert check("vacuous_sufficiency", my_vacuous) is True
    assert check("vacuous_sufficiency", WRONG["vacuous_sufficiency"][
        "the image's own class, full mask (sufficient, not vacuous)"]) is False
    assert "it is not vacuous" in capsys.readouterr().out
    assert check("vacuous_sufficiency", WRONG["vacuous_sufficiency"][
        "the fill's class, full mask (not even sufficient)"]) is False
    assert "sufficiency does not even hold" in capsys.readouterr().out
    assert check("vacuous_sufficiency", WRONG["vacuous_sufficiency"]["a soft mask of 0.5"]) is False
    assert "hard mask" in capsys.readouterr().out


def test_area_weight_refuses_what_is_not_a_number_without_running_explain(capsys):
    for answer in ("40", True, -1.0, math.nan, [40.0]):
        assert check("area_weight", answer) is False
        assert "answer a number" in capsys.readouterr().out
    assert check("area_weight", ...) is False
    assert "replace the `...` with your number" in capsys.readouterr().out


@pytest.mark.slow
def test_area_weight_reference_passes_fast_and_two_wrong_weights_fail(capsys):
    area_weight_outcome.cache_clear()
    start = time.perf_counter()
    assert check("area_weight", EXERCISES["area_weight"].reference) is True
    assert time.perf_counter() - start < 45        # about 6 s alone on one thread; generous for a busy machine
    kept, area = area_weight_outcome(float(EXERCISES["area_weight"].reference))
    assert kept == 8 and area < AREA_LIMIT - 0.01   # a margin: the library's answer is not on the edge
    capsys.readouterr()
    assert check("area_weight", 0.0) is False       # no area term: masks keep nearly everything
    out = capsys.readouterr().out
    assert "the mean area is" in out and "above the 10% limit" in out and "label is lost" not in out
    assert check("area_weight", 400.0) is False     # far too strong: masks collapse, labels are lost
    assert "the label is lost on" in capsys.readouterr().out


# -- student copies ------------------------------------------------------------------------------------------
def test_student_copy_keeps_the_stub_skeleton_and_stubs_the_rest():
    cell = ('def my_area(m_soft):\n    """Area prior. m_soft (B, 1, H, W) -> (B,)."""\n'
            "    # hint: average over every axis but the batch\n"
            "    # BEGIN SOLUTION\n    # STUB: flat = ...  # (B, H*W)\n    flat = m_soft.flatten(1)\n"
            "    # STUB: return ...\n    return flat.mean(1)\n    # END SOLUTION\n\n"
            "def my_other():\n    # BEGIN SOLUTION\n    return 3\n    # END SOLUTION")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(cell)])
    source = nbt.student_copy(nb).cells[0].source
    assert source == ('def my_area(m_soft):\n    """Area prior. m_soft (B, 1, H, W) -> (B,)."""\n'
                      "    # hint: average over every axis but the batch\n"
                      "    flat = ...  # (B, H*W)\n    return ...\n\n"
                      'def my_other():\n    raise NotImplementedError("Exercise: write your code here")')
    namespace = {}
    exec(compile(source, "<student>", "exec"), namespace)
    assert namespace["my_area"](torch.rand(2, 1, 3, 3)) is Ellipsis
    assert check("area_loss", namespace["my_area"]) is False

"""The exercise catalogue: every check accepts the library's answer, rejects a plausible wrong one, reports
an unsolved stub politely; student copies of a notebook run from top to bottom."""
from __future__ import annotations

import math
from pathlib import Path

import nbformat
import pytest
import torch
import torch.nn.functional as F

from actmatch_lite import losses, metrics
from actmatch_lite import notebook_tools as nbt
from actmatch_lite.exercise_catalogue import deletion_auc, necessity_loss, record_layer, with_gradient
from actmatch_lite.exercises import _REGISTRY, check, exercises
from actmatch_lite.fill import apply_mask
from actmatch_lite.masknet import straight_through

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
STUDENT_NOTEBOOK = "01_frozen_classifier_and_activations.ipynb"   # short: no mask training


def _tv_without_diagonal_weight(m, neighbours=8):
    m = m[:, 0]
    tv = (m[:, 1:] - m[:, :-1]).abs().flatten(1).mean(1) + (m[:, :, 1:] - m[:, :, :-1]).abs().flatten(1).mean(1)
    if neighbours == 8:
        tv = tv + (m[:, 1:, 1:] - m[:, :-1, :-1]).abs().flatten(1).mean(1) \
                + (m[:, 1:, :-1] - m[:, :-1, 1:]).abs().flatten(1).mean(1)
    return tv


def _record_without_clone(model, x, layer):
    box = []
    handle = model.get_submodule(layer).register_forward_hook(lambda m, i, out: box.append(out))
    try:
        with torch.no_grad():
            model(x)
    finally:
        handle.remove()
    return box[0]


def _cosine_over_all_values(a_x, a_e):
    return 1 - F.cosine_similarity(a_x.flatten(1), a_e.flatten(1), dim=1)


def _std_over_channels(a_x, a_e):     # standardises over channels instead of locations
    def z(a):
        return (a - a.mean(1, keepdim=True)) / torch.sqrt(a.var(1, unbiased=False, keepdim=True) + 1e-6)
    return (z(a_x) - z(a_e)).pow(2).flatten(1).mean(1)


def _deletion_left_riemann(clf, x, scores, steps):
    t, p = metrics.deletion_curve(clf, x, scores, steps=steps)
    return (p[:, :-1] * (t[1:] - t[:-1])).sum(1)


def _greedy_unique_recall(explanations, instances):  # counts an instance matched by ANY mask, not one-to-one
    out = []
    for e, g in zip(explanations, instances):
        e, g = e.flatten(1).float(), g.flatten(1).float()
        inter = e @ g.T
        union = e.sum(1)[:, None] + g.sum(1)[None] - inter
        ok = (inter >= 0.3 * union) | (inter >= 0.7 * e.sum(1)[:, None])
        out.append(float(ok.any(0).float().mean()))
    return torch.tensor(out)


# one plausible wrong answer per exercise
WRONG = {
    "apply_mask": lambda x, m, fill: m * x + fill,
    "record_layer": _record_without_clone,
    "cross_entropy_loss": lambda z, y: F.cross_entropy(z, y),                      # a mean, not per image
    "kl_loss": lambda zx, ze, t: losses.kl_loss(zx, ze, t) / t ** 2,               # without T²
    "cosine_distance": _cosine_over_all_values,
    "std_mse_distance": _std_over_channels,
    "area_loss": lambda m: m.flatten(1).sum(1),                                    # a sum, not the mean
    "area_excess_loss": lambda m, a: m.flatten(1).mean(1) - a,                     # no clamp
    "straight_through": with_gradient(lambda m, t: m + ((m > t).float() - m)),     # no detach: gradient 0
    "binarisation_loss": lambda m: (m - m ** 2).abs().flatten(1).sum(1),           # paper's sum, not mean
    "tv_loss": _tv_without_diagonal_weight,
    "sufficiency_loss": lambda z, y: F.cross_entropy(z.mean(0), y, reduction="none"),  # averages logits first
    "necessity_loss": lambda zx, zc, y, margin: (margin - (zx - zc).gather(1, y[:, None])[:, 0]).abs(),  # no hinge
    "necessity": lambda clf, x, m: metrics.sufficiency(clf, x, m),
    "sufficiency": lambda clf, x, m: metrics.necessity(clf, x, m),
    "iou": lambda m, gt: metrics.precision(m, gt),
    "pointing_game": lambda s, gt: gt.flatten(1).float().gather(1, s.flatten(1).argmin(1, keepdim=True))[:, 0],
    "deletion_auc": _deletion_left_riemann,
    "instance_recall": _greedy_unique_recall,
}


def _correct(name):
    if name == "straight_through":
        return with_gradient(straight_through)
    return _REGISTRY[name].reference


def _stub(*_args):
    raise NotImplementedError("your code here")


def test_every_exercise_has_a_wrong_answer_here():
    assert set(exercises()) == set(WRONG)


@pytest.mark.parametrize("name", sorted(WRONG))
def test_check_accepts_the_reference(name, capsys):
    assert check(name, _correct(name)) is True
    assert "correct" in capsys.readouterr().out


@pytest.mark.parametrize("name", sorted(WRONG))
def test_check_rejects_a_plausible_wrong_answer(name, capsys):
    assert check(name, WRONG[name]) is False
    assert "Hint:" in capsys.readouterr().out


@pytest.mark.parametrize("name", sorted(WRONG))
def test_check_reports_an_unsolved_stub_without_raising(name, capsys):
    assert check(name, _stub) is False
    assert "not attempted yet" in capsys.readouterr().out


def test_references_are_the_library():
    assert _REGISTRY["tv_loss"].reference is losses.tv_loss
    assert _REGISTRY["apply_mask"].reference is apply_mask
    assert _REGISTRY["iou"].reference is metrics.iou


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

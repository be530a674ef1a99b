"""The hard mask of the amortized explainer: the amortized analogue of the explainer's ``keep`` rule.

The per-image regime picks among the masks its optimisation visited; one network cannot, so it picks among the
masks its pixel ranking implies: the threshold mask ``m_soft > threshold`` and, for every area ``a`` in
:data:`AREA_GRID`, the top-k mask of the ``k = round(a·H·W)`` pixels of highest ``m_soft``.
"""
from __future__ import annotations

import torch

from actmatch_lite.method.fill import apply_mask
from actmatch_lite.method.objective import feasible

AREA_GRID = (0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.08, 0.10, 0.13, 0.16, 0.20, 0.25, 0.30)  # top-k candidate areas


@torch.no_grad()
def select_masks(setup, x, fill, m_soft, y):
    """The hard masks ``(B, 1, H, W)`` bool and the logits of their explanations ``f(e)``.

    Candidates per image: the threshold mask and the top-k masks of :data:`AREA_GRID`. A candidate is feasible
    (:func:`~actmatch_lite.method.objective.feasible`) when it is not empty and keeps ``y`` on ``e``. Unlike the
    explainer's test (``objective.constraints_met``), random backgrounds are not re-drawn here even when
    ``λ_rob > 0``, nor is the complement tested when ``λ_nec > 0``: the network was trained on both terms, and
    checking them costs more classifier passes per candidate (backgrounds: on shapes, 9.6 instead of 1.8 ms per
    image). M2 and M3 measure the result.

    * ``keep="final"``: the threshold mask (the authors' rule);
    * ``"last_feasible"``: the threshold mask when feasible, else the smallest feasible candidate that is larger;
    * ``"smallest_feasible"``: the feasible candidate of least area (a minimal sufficient mask on this grid).

    Without a feasible candidate an image keeps its threshold mask, as the explainer falls back to its final mask.
    """
    cfg = setup.config
    m_thr = m_soft > cfg.threshold
    logits = setup.model(apply_mask(x, m_thr.to(x.dtype), fill))
    if cfg.keep == "final":
        return m_thr, logits
    ok_thr = feasible(logits.argmax(1) == y, m_thr)
    # Undecided: last_feasible repairs only infeasible threshold masks; smallest_feasible looks for smaller ones too.
    todo = ~ok_thr if cfg.keep == "last_feasible" else torch.ones_like(ok_thr)
    out = m_thr.clone()
    if todo.any():
        _search_top_k(setup, x, fill, m_soft, y, ok_thr, todo, out, logits)
    return out, logits


def _search_top_k(setup, x, fill, m_soft, y, ok_thr, todo, out, logits) -> None:
    """Write into ``out`` and ``logits`` the top-k candidate each ``todo`` image's rule picks.

    The candidates are tried from the smallest area up, each only on the images still undecided, and an image is
    decided at its first feasible one (or, for ``smallest_feasible``, once the candidates reach the area of its
    feasible threshold mask): the same choice as testing every candidate, with a fraction of the classifier passes.
    """
    keep, hw = setup.config.keep, m_soft[0].numel()
    area_thr = out.flatten(1).sum(1)                                  # out holds the threshold masks so far
    order = m_soft[todo].flatten(1).argsort(1, descending=True)       # pixel ranks by m_soft, where needed
    ranks = torch.zeros_like(m_soft.flatten(1), dtype=torch.long)
    ranks[todo] = torch.empty_like(order).scatter_(1, order, torch.arange(hw, device=x.device).expand_as(order))
    for a in AREA_GRID:
        k = max(1, round(a * hw))
        if keep == "smallest_feasible":
            todo &= ~ok_thr | (k < area_thr)          # a feasible threshold mask no larger than k wins
        if not todo.any():
            break
        idx = (todo if keep == "smallest_feasible" else todo & (k > area_thr)).nonzero()[:, 0]
        if not len(idx):                              # last_feasible only grows the threshold mask
            continue
        cand = (ranks[idx] < k).view(-1, *out.shape[1:])
        z = setup.model(apply_mask(x[idx], cand.to(x.dtype), fill[idx]))
        ok = z.argmax(1) == y[idx]
        out[idx[ok]], logits[idx[ok]] = cand[ok], z[ok]
        todo[idx[ok]] = False

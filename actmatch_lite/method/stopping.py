"""Per-image bookkeeping of :func:`~actmatch_lite.explain`: which step's mask each image returns, and when it stops.

The paper's loop runs a fixed number of steps and returns the final mask. :class:`MaskTracker` adds, per image
and all off in the ``paper-resnet18`` preset (``ExplainConfig`` documents each setting):

* the keep rule (:func:`keep_step`, ``keep``): hold the latest or the smallest mask that met the constraints;
* early stopping (``patience``, ``stable_iou``, ``stop_max_bin``): stop once the hard mask is stable, the soft
  mask decided and the constraints met;
* the end of the soft warm-up (``soft_steps``): stop the images whose hard mask already meets the constraints.

Constraints are the tiers of ``objective.tiers``: 2 all met, 1 the label kept but the mask not necessary, 0 lost.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from actmatch_lite.method import losses
from actmatch_lite.method.config import ExplainConfig

ALL_MET = 2   # the tier (objective.tiers) of a mask that meets every constraint


@dataclass(eq=False)
class MaskTracker:
    """The state of a chunk of ``b`` images, indexed by image; a step updates the ``idx`` still training.

    ``held_*``: the mask each image returns so far (its soft mask, area and tier); ``ref_m`` / ``unchanged``: the
    reference hard mask of the stability test and for how many steps the mask has stayed near it.
    """

    cfg: ExplainConfig
    active: torch.Tensor      # (b,) bool: still training
    steps_run: torch.Tensor   # (b,) long
    held_soft: torch.Tensor   # (b, 1, H, W) float
    held_area: torch.Tensor   # (b,) float
    held_tier: torch.Tensor   # (b,) long
    ref_m: torch.Tensor       # (b, 1, H, W) bool
    unchanged: torch.Tensor   # (b,) long

    @classmethod
    def start(cls, cfg: ExplainConfig, x: torch.Tensor) -> MaskTracker:
        """Every image of ``x (b, C, H, W)`` training, holding a full mask of tier 0 (any step's mask replaces it)."""
        b, _, h, w = x.shape
        dev = x.device
        return cls(cfg, active=torch.ones(b, dtype=torch.bool, device=dev),
                   steps_run=torch.zeros(b, dtype=torch.long, device=dev),
                   held_soft=torch.zeros(b, 1, h, w, device=dev), held_area=torch.ones(b, device=dev),
                   held_tier=torch.zeros(b, dtype=torch.long, device=dev),
                   ref_m=torch.zeros(b, 1, h, w, dtype=torch.bool, device=dev),
                   unchanged=torch.zeros(b, dtype=torch.long, device=dev))

    def update(self, idx, step: int, m_soft, m, tier) -> None:
        """Record step ``step`` of the images ``idx``: their soft masks ``m_soft (n, 1, H, W)`` (detached), hard
        masks ``m`` and tiers. Beyond the paper: the mask held is the one :func:`keep_step` picks, not the last,
        and the stability count that early stopping reads moves on."""
        area = m.flatten(1).float().mean(1)
        keep = keep_step(self.cfg.keep, tier, self.held_tier[idx], area, self.held_area[idx])
        self.held_soft[idx[keep]], self.held_area[idx[keep]] = m_soft[keep], area[keep]
        self.held_tier[idx[keep]] = tier[keep]
        self.steps_run[idx] = step + 1
        # Compare with a reference that moves only when the mask leaves its neighbourhood, so a slow drift
        # adds up and resets the count while flicker of a few boundary pixels does not.
        same = _iou(m, self.ref_m[idx]) >= self.cfg.stable_iou
        self.unchanged[idx] = torch.where(same, self.unchanged[idx] + 1, 0)
        self.ref_m[idx] = torch.where(same.view(-1, 1, 1, 1), self.ref_m[idx], m)

    def stop(self, idx, step: int, m_soft, tier) -> int:
        """Stop the images of ``idx`` that are done after step ``step``; returns how many images still train.

        Beyond the paper's fixed step count: with ``patience``, an image stops once its hard mask has been stable
        for ``patience`` steps, its soft mask is decided (``L_bin <= stop_max_bin``) and it meets every constraint.
        At the end of the soft warm-up, an image that meets every constraint stops: the straight-through phase
        only repairs the masks that break one."""
        cfg, holds = self.cfg, tier == ALL_MET
        if cfg.patience is not None:
            decided = losses.binarisation_loss(m_soft) <= cfg.stop_max_bin
            self.active[idx[(self.unchanged[idx] >= cfg.patience) & holds & decided]] = False
        if step == cfg.soft_steps - 1:
            self.active[idx[holds]] = False
        return int(self.active.sum())


def keep_step(rule: str, met, held_met, area, held_area) -> torch.Tensor:
    """``(b,)`` bool: replace the mask held for each image by this step's mask (``ExplainConfig.keep``)?

    ``met`` / ``held_met``: the tiers (``objective.tiers``) of this step's mask and of the held one. ``final``
    (the paper) always replaces. Otherwise a higher tier always wins; within the held tier, ``last_feasible``
    takes the latest mask and ``smallest_feasible`` the smaller one. While every mask so far has lost the label
    (tier 0), the latest one is held whatever the rule.
    """
    if rule == "final":
        return torch.ones_like(met, dtype=torch.bool)
    if rule == "last_feasible":
        return met >= held_met
    return (met > held_met) | ((met == held_met) & ((met == 0) | (area <= held_area)))


def _iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``(b,)`` IoU of two bool masks ``(b, 1, H, W)``; 1 when both are empty."""
    inter, union = (a & b).flatten(1).sum(1), (a | b).flatten(1).sum(1)
    return torch.where(union > 0, inter / union.clamp_min(1), 1.0)

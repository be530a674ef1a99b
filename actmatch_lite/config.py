"""Settings of the explainer: one frozen dataclass with every default visible, and named presets per model.

An ablation is ``dataclasses.replace(cfg, lambda_act=0.0)``. The defaults are the authors' code values for
ResNet-18 on ImageNet (Suhail, Anand, Sethi 2025, arXiv 2509.23051, public notebook); the presets for the
package's models were tuned on seeds and images never used for evaluation (``benchmarks/tune_explainer.py``).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ._validate import InputError
from .fill import FILLS
from .losses.abductive import NECESSITY_FORMS, SUFFICIENCY_FORMS
from .losses.activation import DISTANCES

TRAINING_BACKGROUNDS = ("zero", "mean", "gaussian", "uniform")  # per-image draws; "shuffle" would mix images


@dataclass(frozen=True)
class ExplainConfig:
    """Every setting of :func:`actmatch_lite.explain`.

    Objective (each term per image; see ``actmatch_lite.losses``):
    ``L = λ_act L_act + λ_ce L_CE + λ_kl L_KL + λ_area L_area + λ_bin L_bin + λ_tv L_TV + λ_rob L_rob + λ_nec L_nec``.
    A weight of 0 switches its term off and skips its forward passes.
    """

    # -- weights of the objective (authors' code, ResNet-18)
    lambda_act: float = 10.0
    lambda_ce: float = 15.0
    lambda_kl: float = 5.0
    lambda_area: float = 100.0
    lambda_bin: float = 1.0
    lambda_tv: float = 500.0
    lambda_rob: float = 100.0
    lambda_nec: float = 0.0          # the authors' code has the term with weight 0
    temperature: float = 2.0         # T of the KL terms (fidelity and the KL form of sufficiency)
    # -- activation matching: None = the model's defaults (LoadedModel.taps / tap_weights, default_distances)
    taps: tuple[str, ...] | None = None
    tap_weights: tuple[float, ...] | None = None
    distances: tuple[str, ...] | None = None
    # -- mask priors
    tv_neighbours: int = 8           # 8: authors' code (diagonals weighted 1/√2); 4: paper
    area_target: float | None = None  # None: L_area = mean(m); a: L_area = max(0, mean(m) - a) (not in the paper)
    # -- removed pixels and the abductive constraints
    fill: str | float = "mean"       # "zero", "mean" (dataset mean colour = authors' zero in normalised space), "blur", or a constant
    backgrounds: tuple[str, ...] = ("mean", "gaussian", "uniform")  # K random backgrounds, redrawn every step
    rob_form: str = "ce"             # "ce" or "kl" (authors' alternative)
    nec_margin: float = 1.0          # hinge margin of the necessity term (logit units, or probability for "prob")
    nec_form: str = "logit"          # "logit" (authors' code) or "prob"
    # -- mask network
    threshold: float = 0.5           # m = 1[m_soft > threshold]
    mask_width: int | None = None    # None: masknet.default_spec from the input size
    mask_depth: int | None = None
    mask_stride: int | None = None
    init_keep: float = 0.5           # the first masks keep about this fraction (head bias = logit(init_keep))
    # -- optimiser
    steps: int = 880                 # maximum number of steps
    lr: float = 5e-5                 # Adam
    patience: int | None = None      # early stop of an image once its hard mask is unchanged for this many steps
                                     # and its label is kept on e and on every background; None: never stop early

    def __post_init__(self):
        for f in dataclasses.fields(self):
            if f.name.startswith("lambda_") and not getattr(self, f.name) >= 0:
                raise InputError(f"{f.name} must be >= 0, got {getattr(self, f.name)}")
        if self.temperature <= 0:
            raise InputError(f"temperature must be > 0, got {self.temperature}")
        if self.tv_neighbours not in (4, 8):
            raise InputError(f"tv_neighbours must be 4 or 8, got {self.tv_neighbours}")
        if self.area_target is not None and not 0 <= self.area_target < 1:
            raise InputError(f"area_target must be in [0, 1) or None, got {self.area_target}")
        if not isinstance(self.fill, (int, float)) and self.fill not in FILLS:
            raise InputError(f"fill must be one of {FILLS} or a number, got {self.fill!r}")
        bad = [b for b in self.backgrounds if b not in TRAINING_BACKGROUNDS]
        if bad or (self.lambda_rob > 0 and not self.backgrounds):
            raise InputError(f"backgrounds must be a non-empty tuple of {TRAINING_BACKGROUNDS}, got {self.backgrounds!r}")
        if self.rob_form not in SUFFICIENCY_FORMS:
            raise InputError(f"rob_form must be one of {SUFFICIENCY_FORMS}, got {self.rob_form!r}")
        if self.nec_form not in NECESSITY_FORMS:
            raise InputError(f"nec_form must be one of {NECESSITY_FORMS}, got {self.nec_form!r}")
        if self.distances is not None and any(d not in DISTANCES for d in self.distances):
            raise InputError(f"distances must be taken from {DISTANCES}, got {self.distances!r}")
        for name in ("tap_weights", "distances"):
            value = getattr(self, name)
            if value is not None and self.taps is not None and len(value) != len(self.taps):
                raise InputError(f"{name} has {len(value)} entries but taps has {len(self.taps)}")
        if not 0 < self.threshold < 1 or not 0 < self.init_keep < 1:
            raise InputError("threshold and init_keep must be in (0, 1)")
        if self.steps < 1 or self.lr <= 0:
            raise InputError(f"steps must be >= 1 and lr > 0, got steps={self.steps}, lr={self.lr}")
        if self.patience is not None and self.patience < 1:
            raise InputError(f"patience must be >= 1 or None, got {self.patience}")


PRESETS: dict[str, ExplainConfig] = {
    # Authors' public notebook, ResNet-18 on ImageNet at 224×224 (taps relu, layer1..4 with α 1, 2, 2, 4, 8
    # come from the resnet18 LoadedModel; cosine for the two shallow taps, std_mse deeper).
    "paper-resnet18": ExplainConfig(
        lambda_act=10.0, lambda_ce=15.0, lambda_kl=5.0, lambda_area=100.0, lambda_bin=1.0, lambda_tv=500.0,
        lambda_rob=100.0, lambda_nec=0.0, temperature=2.0, tv_neighbours=8, fill="mean",
        backgrounds=("mean", "gaussian", "uniform"), rob_form="ce", steps=880, lr=5e-5, patience=None,
        area_target=None),
    # Tuned below (benchmarks/tune_explainer.py); values filled in by tuning.
    "shapes": ExplainConfig(
        lambda_act=1.0, lambda_ce=4.0, lambda_kl=0.5, lambda_area=20.0, lambda_bin=1.0, lambda_tv=20.0,
        lambda_rob=4.0, lambda_nec=0.0, fill="mean", backgrounds=("zero", "gaussian", "uniform"),
        steps=200, lr=1e-2, patience=20),
    "fmnist": ExplainConfig(
        lambda_act=0.6, lambda_ce=4.0, lambda_kl=0.54, lambda_area=100.0, lambda_bin=1.2, lambda_tv=50.0,
        lambda_rob=10.0, lambda_nec=0.0, fill="zero", backgrounds=("zero", "gaussian", "uniform"),
        steps=200, lr=1e-2, patience=20),
    # Later version of the paper, EfficientNet: act 1, CE 4, KL 0.4, area 15, bin 0.3, TV 15, rob 6.
    "imagenet": ExplainConfig(
        lambda_act=1.0, lambda_ce=4.0, lambda_kl=0.4, lambda_area=15.0, lambda_bin=0.3, lambda_tv=15.0,
        lambda_rob=6.0, lambda_nec=0.0, fill="mean", backgrounds=("mean", "gaussian", "uniform"),
        steps=300, lr=1e-3, patience=30),
}


def get_preset(name: str) -> ExplainConfig:
    """The preset called ``name``; an unknown name raises ``InputError`` listing the known ones."""
    if name not in PRESETS:
        raise InputError(f"unknown preset {name!r}; known presets: {sorted(PRESETS)}")
    return PRESETS[name]

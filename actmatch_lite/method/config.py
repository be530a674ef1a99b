"""Settings of the explainer: one frozen dataclass with every default visible, and named presets per model.

An ablation is ``dataclasses.replace(cfg, lambda_act=0.0)``. The defaults are the authors' code values for
ResNet-18 on ImageNet (Suhail, Anand, Sethi 2025, arXiv 2509.23051, public notebook); the presets for the
package's models were tuned on seeds and images never used for evaluation (``benchmarks/tune_explainer.py``).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from actmatch_lite._validate import InputError
from actmatch_lite.method.fill import FILLS
from actmatch_lite.method.losses.abductive import NECESSITY_FORMS, ROBUSTNESS_FORMS
from actmatch_lite.method.losses.activation import DISTANCES

KEEP_CHOICES = ("final", "last_feasible", "smallest_feasible")
TRAINING_BACKGROUNDS = ("zero", "mean", "gaussian", "uniform")  # per-image draws; "shuffle" would mix images


@dataclass(frozen=True)
class ExplainConfig:
    """Every setting of :func:`actmatch_lite.explain`.

    Objective (each term per image; see ``actmatch_lite.method.losses``):
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
    temperature: float = 2.0         # T of the KL terms (fidelity and the KL form of robustness)
    # -- activation matching: None = the model's defaults (LoadedModel.taps / tap_weights, default_distances)
    taps: tuple[str, ...] | None = None
    tap_weights: tuple[float, ...] | None = None
    distances: tuple[str, ...] | None = None
    tap_batch_dims: tuple[int | None, ...] | None = None  # per tap, the dim of its output that indexes the images:
                                     # 0 (conv maps, vectors, tokens (B, N, C)), 1 (tokens (N, B, C), e.g.
                                     # nn.TransformerEncoderLayer's default batch_first=False); None (whole or
                                     # per tap): found from the batch size, which fails when it equals the
                                     # number of tokens (capture.find_batch_dim)
    # -- mask priors
    tv_neighbours: int = 8           # 8: authors' code (diagonals weighted 1/√2); 4: paper
    area_target: float | None = None  # None: L_area = mean(m); a: max(0, mean(m) - a) (not in the paper)
    # -- removed pixels and the abductive constraints
    fill: str | float = "mean"       # "zero", "mean" (the dataset mean colour: the authors' zero in normalised
                                     # space), "blur", or a constant
    mean: tuple[float, ...] | None = None  # the dataset mean colour in pixel space, one value per channel, for the
                                     # "mean" fill and the "mean"/"gaussian" backgrounds; None: the LoadedModel's
                                     # (a plain nn.Module has none: fill="mean" then needs it here)
    backgrounds: tuple[str, ...] = ("mean", "gaussian", "uniform")  # random background kinds, redrawn each step
    backgrounds_per_step: int | None = None  # None: every kind each step (authors); k: k kinds per step, in turn
    rob_form: str = "ce"             # "ce" or "kl" (authors' alternative)
    nec_margin: float = 1.0          # hinge margin of the necessity term (logit units, or probability for "prob")
    nec_form: str = "logit"          # "logit" (authors' code) or "prob"
    # -- mask network
    threshold: float = 0.5           # m = 1[m_soft > threshold]
    mask_width: int | None = None    # None: masknet.default_spec from the input size
    mask_depth: int | None = None
    mask_stride: int | None = None
    init_keep: float = 0.5           # the first masks keep about this fraction (head bias = logit(init_keep))
    soft_steps: int = 0              # the first soft_steps steps mask with m_soft itself, then with m_st (paper: 0).
                                     # A small network trained from scratch in ~100 steps collapses to an empty or
                                     # full mask under m_st from the start. Images whose hard mask satisfies the
                                     # constraints when the warm-up ends stop there; the others go on under m_st
    # -- optimiser
    steps: int = 880                 # maximum number of steps
    lr: float = 5e-5                 # Adam
    patience: int | None = None      # early stop of an image once its hard mask is unchanged for this many steps
                                     # and meets the constraints: its label is kept on e and on every background
                                     # and, when lambda_nec > 0, lost on the complement; None: no such stop (the
                                     # stop at the end of a soft warm-up still applies: soft_steps=0 turns it off)
    keep: str = "final"              # which mask each image returns: "final" (authors), "last_feasible" (the latest
                                     # non-empty hard mask that met those constraints) or "smallest_feasible" (the
                                     # feasible one of least area: a minimal sufficient mask). Without a feasible
                                     # step, a mask that kept the label (not necessary) comes next, then the final one
    stop_max_bin: float = 1.0        # ... and only once its mask is decided: mean m_soft (1 - m_soft) at most this
                                     # (1: no condition; a soft mask hovering at the threshold has not converged)
    stable_iou: float = 1.0          # "unchanged": IoU with a reference mask at least this (1: identical); the
                                     # reference is reset to the current mask whenever the IoU falls below

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
            raise InputError(f"backgrounds must be a non-empty tuple of {TRAINING_BACKGROUNDS}, "
                             f"got {self.backgrounds!r}")
        if self.backgrounds_per_step is not None and not 1 <= self.backgrounds_per_step <= len(self.backgrounds):
            raise InputError(f"backgrounds_per_step must be in [1, {len(self.backgrounds)}] or None, "
                             f"got {self.backgrounds_per_step}")
        if self.soft_steps < 0:
            raise InputError(f"soft_steps must be >= 0, got {self.soft_steps}")
        if self.rob_form not in ROBUSTNESS_FORMS:
            raise InputError(f"rob_form must be one of {ROBUSTNESS_FORMS}, got {self.rob_form!r}")
        if self.nec_form not in NECESSITY_FORMS:
            raise InputError(f"nec_form must be one of {NECESSITY_FORMS}, got {self.nec_form!r}")
        if self.distances is not None and any(d not in DISTANCES for d in self.distances):
            raise InputError(f"distances must be taken from {DISTANCES}, got {self.distances!r}")
        if self.tap_batch_dims is not None and any(
                d is not None and (isinstance(d, bool) or not isinstance(d, int) or d < 0) for d in self.tap_batch_dims):
            raise InputError(f"tap_batch_dims must hold dims >= 0 (or None to find them), got {self.tap_batch_dims!r}")
        if self.mean is not None and (not isinstance(self.mean, (tuple, list)) or not self.mean or any(
                isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1 for v in self.mean)):
            raise InputError(f"mean must be one pixel-space value in [0, 1] per channel, got {self.mean!r}")
        for name in ("tap_weights", "distances", "tap_batch_dims"):
            value = getattr(self, name)
            if value is not None and self.taps is not None and len(value) != len(self.taps):
                raise InputError(f"{name} has {len(value)} entries but taps has {len(self.taps)}")
        if not 0 < self.threshold < 1 or not 0 < self.init_keep < 1:
            raise InputError("threshold and init_keep must be in (0, 1)")
        if self.steps < 1 or self.lr <= 0:
            raise InputError(f"steps must be >= 1 and lr > 0, got steps={self.steps}, lr={self.lr}")
        if self.keep not in KEEP_CHOICES:
            raise InputError(f"keep must be one of {KEEP_CHOICES}, got {self.keep!r}")
        if not 0 < self.stop_max_bin <= 1:
            raise InputError(f"stop_max_bin must be in (0, 1], got {self.stop_max_bin}")
        if not 0 < self.stable_iou <= 1:
            raise InputError(f"stable_iou must be in (0, 1], got {self.stable_iou}")
        if self.patience is not None and self.patience < 1:
            raise InputError(f"patience must be >= 1 or None, got {self.patience}")


PRESETS: dict[str, ExplainConfig] = {
    # Authors' public notebook, ResNet-18 on ImageNet at 224×224 (taps relu, layer1..4 with α 1, 2, 2, 4, 8
    # come from the resnet18 LoadedModel; cosine for the two shallow taps, std_mse deeper). 880 steps: about
    # 35 minutes a photo on one CPU thread (reported in issue 15; ResNet-18's weights are not on our machines), so
    # explain's progress bar counts steps and shows the time left.
    "paper-resnet18": ExplainConfig(
        lambda_act=10.0, lambda_ce=15.0, lambda_kl=5.0, lambda_area=100.0, lambda_bin=1.0, lambda_tv=500.0,
        lambda_rob=100.0, lambda_nec=0.0, temperature=2.0, tv_neighbours=8, fill="mean",
        backgrounds=("mean", "gaussian", "uniform"), backgrounds_per_step=None, rob_form="ce", steps=880, lr=5e-5,
        soft_steps=0, patience=None, area_target=None, keep="final"),
    # shapes-cnn, 64x64 (tuned on make_shapes(64, seed=500); see benchmarks/tune_explainer.py). Soft warm-up: from
    # scratch under the straight-through mask the small U-Net collapses to an empty or full mask; the short
    # straight-through phase afterwards only repairs images whose hard mask lost the label. Zero fill: a grey
    # (mean) fill leaves the object's silhouette, which this classifier still recognises. Sufficiency term with one
    # background kind per step: shapes-cnn is trained with noise backgrounds (see train.py), so the true object
    # keeps its label on noise (0.99), and λ_rob = 1 lifts the masks' robustness from 0.94 to 0.98 at equal area.
    # Necessity as a probability hinge with margin 0.9: the authors' logit hinge with margin 1 is inactive here
    # (removing the object drops its logit by 5-20, notebook 06). Removing exactly the object leaves its
    # silhouette, which the classifier still reads (necessity 0.80 with the true masks); λ_nec = 4 teaches the
    # mask to take the outline too: necessity 0.80 -> 0.91, IoU 0.80 -> 0.77, with 55 instead of 70 soft steps
    # to pay for the extra forward pass (0.44 CPU s per image at batch 64).
    "shapes": ExplainConfig(
        lambda_act=1.0, lambda_ce=4.0, lambda_kl=0.5, lambda_area=40.0, lambda_bin=10.0, lambda_tv=20.0,
        lambda_rob=1.0, lambda_nec=4.0, fill="zero", backgrounds=("zero", "gaussian", "uniform"),
        backgrounds_per_step=1, soft_steps=55, steps=130, lr=2e-3, patience=10, stable_iou=0.97, stop_max_bin=0.05,
        keep="last_feasible", nec_form="prob", nec_margin=0.9),
    # fmnist-cnn, 28x28 (tuned on test-subset images 0-63). Weights: the later version's MNIST values with a lighter
    # TV. Straight-through from the start (a soft mask only dims the garment, which the classifier still
    # recognises); the hard mask flickers, so each image returns its smallest mask that kept the label. CE 8 (not
    # 4): with 4, about one sandal in 64 (thin straps) collapsed to an empty mask (test-subset images 200-263,
    # 800-863, 1400-1463: sufficiency 0.984 each, then 1.000 each at mean area 5.0 / 6.2 / 3.5 %).
    "fmnist": ExplainConfig(
        lambda_act=0.6, lambda_ce=8.0, lambda_kl=0.54, lambda_area=100.0, lambda_bin=1.2, lambda_tv=10.0,
        lambda_rob=0.0, lambda_nec=0.0, fill="zero", backgrounds=("zero", "gaussian", "uniform"),
        soft_steps=0, steps=150, lr=1e-3, patience=10, stable_iou=0.97, stop_max_bin=0.05, keep="smallest_feasible",
        nec_form="prob", nec_margin=0.9),
    # EfficientNet-Lite0 at 224x224, tuned on the photos chelsea, coffee, rocket (seed 0, one CPU thread;
    # benchmarks/tune_photos.py, result in benchmarks/tune_photos.md). Start: the later version's EfficientNet weights
    # gave 97-100 % masks: the head bias at logit(0.5) leaves every pixel at the threshold, the hard mask flips
    # between empty and full, and activation matching (~20-30 at small masks) outweighs area 15, so it settles
    # full. Straight-through from the start (or from init_keep 0.2/0.7) collapses to an empty mask whose
    # saturated sigmoid never recovers. Fix: a 150-step soft warm-up, area 80 down to a 2 % target, act 0.3,
    # KL 0.1, bin 10 (a dimmed soft mask is not a removal), and the robustness term on gaussian backgrounds
    # every step (without it, or on every other step, the soft mask just dims the whole photo, which the
    # classifier still recognises); each photo returns its smallest mask that kept the label. Tuning photos:
    # areas 12.8 / 6.1 / 2.8 %, all kept, ~23-26 CPU s each. Held out: camera 2.8 %, but astronaut ("barbell",
    # p 0.14) 90 % and horse (p 0.25) 44 %: their hard masks never keep the label in the warm-up (table in
    # benchmarks/tune_photos.md). All six kept, 22-35 CPU s per photo.
    "imagenet": ExplainConfig(
        lambda_act=0.3, lambda_ce=4.0, lambda_kl=0.1, lambda_area=80.0, lambda_bin=10.0, lambda_tv=15.0,
        lambda_rob=6.0, lambda_nec=0.0, fill="mean", backgrounds=("gaussian",), backgrounds_per_step=1,
        area_target=0.02, init_keep=0.5, soft_steps=150, steps=250, lr=1e-3, patience=None,
        keep="smallest_feasible"),
}
# fmnist with the necessity term (the probability hinge, margin 0.9, weight 4): the smallest mask that keeps the
# label AND whose removal loses it. Not tuned further. Masks about three times larger than the fmnist preset's
# (14 % of the pixels on test-subset images 0-63, against 4.3 %), necessity 0.83 against 0.27, sufficiency 1.000
# for both; benchmarks/RESULTS.md compares it with the baselines at its own area (bench fmnist --preset).
PRESETS["fmnist-necessary"] = dataclasses.replace(PRESETS["fmnist"], lambda_nec=4.0)
# imagenet with the necessity term (the authors' logit hinge, margin 1, weight 4), not tuned further. On coffee,
# camera and clock (seed 0, one thread): necessity 3 of 3 and the label kept on all three, at 29.3 / 6.7 / 23.5 %
# of the pixels (the imagenet preset: 6.1 / 2.8 % on the first two) and about twice the time (all 250 steps run).
# A probability hinge (margin 0.5) kept coffee at 4.8 % but did not make it necessary.
PRESETS["imagenet-necessary"] = dataclasses.replace(PRESETS["imagenet"], lambda_nec=4.0)
# imagenet with half the soft warm-up (75 of 125 steps): the cheapest lever of benchmarks/photo_speed.md, for photos
# on a slow CPU. Its price over the 13 core photos (seed 101, one thread; benchmarks/photos_fast.md): about half the
# time, the label kept on 11 of 13 (imagenet: 10), but larger masks: median area 12.3 % against 5.3 %, 9.5 % against
# 4.5 % on the 3 confident photos (benchmarks/RESULTS.md, "Cost per photo").
PRESETS["imagenet-fast"] = dataclasses.replace(PRESETS["imagenet"], soft_steps=75, steps=125)


def get_preset(name: str) -> ExplainConfig:
    """The preset called ``name``; an unknown name raises ``InputError`` listing the known ones."""
    if name not in PRESETS:
        raise InputError(f"unknown preset {name!r}; known presets: {sorted(PRESETS)}")
    return PRESETS[name]

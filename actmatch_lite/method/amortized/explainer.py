"""The amortized explainer: a trained mask network ``U_θ`` for one classifier, and its file.

``explain(x)``: ``m_soft = sigmoid(U_θ(x))``, one forward pass (or ``refine_steps`` per-image steps from θ,
:mod:`.refinement`), then the hard mask by the config's ``keep`` rule (:mod:`.selection`). A file (format
:data:`FORMAT`) holds the network's weights and shape, the objective's config and the training metadata; the shipped
files are found and checked by :mod:`actmatch_lite.models.amortized`.
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import torch

from actmatch_lite._validate import InputError, check_explain_inputs
from actmatch_lite.checksums import ChecksumError, sha256_of
from actmatch_lite.method.amortized.refinement import refine
from actmatch_lite.method.amortized.selection import select_masks
from actmatch_lite.method.config import ExplainConfig
from actmatch_lite.method.explainer import Explanation
from actmatch_lite.method.fill import apply_mask, make_fill
from actmatch_lite.method.frozen import frozen
from actmatch_lite.method.masknet import MaskNetSpec, MaskUNet
from actmatch_lite.method.objective import explanation_warnings, fill_kept
from actmatch_lite.method.setup import classifier_device, reference_pass, resolve, resolve_targets
from actmatch_lite.spec import LoadedModel

FORMAT = 1   # version of the saved file layout
# The networks of format-1 files have leaky ReLUs. Why: trained over a dataset, the area term pushes every mask
# logit down on every batch, and Adam moves every weight of the last decoder conv by about ``lr`` per step in that
# direction, so its ReLUs all die within a few dozen steps; the mask is then the head's bias, one value everywhere
# (observed with lr 5e-4 to 2e-3). A leaky ReLU keeps a gradient path open.
ACTIVATION = "leaky_relu"
RETRAIN = "retrain it with `python -m actmatch_lite amortized train {name}`"
OTHER_TARGET = ("target differs from the predicted class on some images: the amortized mask explains the predicted "
                "class; pass refine_steps > 0 to adapt it to the target")


def _soft_masks(setup, net: MaskUNet, x, fill, target, refine_steps: int, seed: int):
    """``(logits_x, y, m_soft, history)``: one forward pass of ``net``, or ``refine_steps`` per-image steps from it
    (which need the reference activations, and gradients even when the caller disabled them)."""
    if not refine_steps:
        with torch.no_grad():
            logits_x = setup.model(x)
            y = resolve_targets(target, logits_x)
            return logits_x, y, net(x), {}
    logits_x, acts_x = reference_pass(setup, x)
    y = resolve_targets(target, logits_x)
    with torch.enable_grad():
        m_soft, total = refine(setup, net, x, fill, logits_x, acts_x, y, refine_steps, seed)
    return logits_x, y, m_soft, {"total": total}


class AmortizedExplainer:
    """A trained mask network ``U_θ`` for one classifier; :meth:`explain` mirrors :func:`actmatch_lite.explain`."""

    def __init__(self, model: LoadedModel, mask_net: MaskUNet, config: ExplainConfig, meta: dict | None = None):
        if mask_net.n_nets != 1:
            raise InputError("an amortized explainer holds a single mask network (n_nets = 1)")
        self.model, self.mask_net, self.config, self.meta = model, mask_net.eval(), config, dict(meta or {})

    def explain(self, x: torch.Tensor, *, target=None, refine_steps: int = 0, seed: int = 0) -> Explanation:
        """Explain ``x (B, C, H, W)`` in [0, 1]: one forward pass of ``U_θ``, then ``refine_steps`` per-image steps.

        ``target`` defaults to ``y* = argmax f(x)``; the amortized mask explains the predicted class, so another
        target is only followed by the refinement (a warning says so when ``refine_steps = 0``). The hard mask
        follows the config's ``keep`` rule (:func:`.selection.select_masks`). ``x``, ``target`` and ``seed`` are
        checked as in :func:`actmatch_lite.explain` (same accepted forms, same messages; ``x`` is cast to the
        classifier's dtype).
        """
        setup = resolve(self.model, self.config)
        x, target, seed = check_explain_inputs(self.model, x, target=target, seed=seed)
        if refine_steps < 0:
            raise InputError(f"refine_steps must be >= 0, got {refine_steps}")
        dev = classifier_device(setup.model, None)
        x, net = x.detach().to(dev), self.mask_net.to(dev)
        start = time.perf_counter()
        with frozen(setup.model):
            fill = make_fill(x, setup.config.fill, mean=setup.mean)
            logits_x, y, m_soft, history = _soft_masks(setup, net, x, fill, target, refine_steps, seed)
            with torch.no_grad():
                m, logits_e = select_masks(setup, x, fill, m_soft, y)
                e = apply_mask(x, m.to(x.dtype), fill)
            vacuous = fill_kept(setup, fill, y)
        kept = logits_e.argmax(1) == y
        warn = list(explanation_warnings(m, kept, y, vacuous))
        if not refine_steps and (y != logits_x.argmax(1)).any():
            warn.append(OTHER_TARGET)
        p_before, p_after = (z.softmax(1).gather(1, y[:, None])[:, 0].cpu() for z in (logits_x, logits_e))
        return Explanation(mask=m.cpu(), soft_mask=m_soft.cpu(), explanation=e.cpu(), target=y.cpu(),
                           prob_before=p_before, prob_after=p_after, label_kept=kept.cpu(), history=history,
                           steps_run=torch.full((len(x),), refine_steps), seconds=time.perf_counter() - start,
                           config=setup.config, warnings=tuple(warn))

    __call__ = explain

    def save(self, path: str | Path) -> str:
        """Write the network, its spec, the objective's config and ``meta`` to ``path``; return the file's SHA-256."""
        net = self.mask_net
        state = {k: v.detach().cpu().float().contiguous() for k, v in net.state_dict().items()}
        torch.save({"format": FORMAT, "model": self.model.name, "in_channels": net.stem.c_in, "size": list(net.size),
                    "spec": dataclasses.asdict(net.spec), "config": dataclasses.asdict(self.config),
                    "meta": self.meta, "state_dict": state}, path)
        return sha256_of(path)

    @classmethod
    def load(cls, path: str | Path, model: LoadedModel, *, sha256: str | None = None) -> AmortizedExplainer:
        """Read a file written by :meth:`save` for ``model``; with ``sha256`` the file's bytes are checked first."""
        if sha256 is not None and sha256_of(path) != sha256:
            raise ChecksumError(f"{path} has SHA-256 {sha256_of(path)} but {sha256} is expected: the file is corrupt "
                                f"or was replaced; {RETRAIN.format(name=model.name)}")
        blob = torch.load(path, map_location="cpu", weights_only=True)
        if blob.get("format") != FORMAT or blob.get("model") != model.name:
            raise InputError(f"{path} holds an amortized explainer for {blob.get('model')!r} (format "
                             f"{blob.get('format')}), not for {model.name!r} (format {FORMAT})")
        net = MaskUNet(blob["in_channels"], tuple(blob["size"]), spec=MaskNetSpec(**blob["spec"]),
                       activation=ACTIVATION)
        net.load_state_dict(blob["state_dict"])
        dev = next(model.clf.parameters()).device
        return cls(model, net.to(dev), ExplainConfig(**blob["config"]), blob["meta"])

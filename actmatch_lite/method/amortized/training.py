"""Training one mask network over a dataset on the per-image objective.

One network ``U_θ`` for a training set ``D``, on the terms and weights ``L`` of an
:class:`~actmatch_lite.method.config.ExplainConfig` (computed by :func:`actmatch_lite.method.objective.objective`), averaged:

    θ* = argmin_θ  mean_{x ∈ D} L(x, m_st),    m_st = straight_through(sigmoid(U_θ(x))),  y* = argmax f(x)

(real-time saliency, Dabkowski & Gal 2017; Stalder et al. 2022). The checkpoint kept is the one whose hard masks
score best on held-out images: the amortized analogue of the explainer's ``keep`` rule.
"""
from __future__ import annotations

import copy
import math

import torch

from actmatch_lite._validate import InputError, check_images
from actmatch_lite.checksums import classifier_sha256
from actmatch_lite.method.amortized.explainer import ACTIVATION, AmortizedExplainer
from actmatch_lite.method.config import ExplainConfig
from actmatch_lite.method.fill import make_fill
from actmatch_lite.method.frozen import frozen
from actmatch_lite.method.masknet import MaskNetSpec, MaskUNet, default_spec
from actmatch_lite.method.objective import objective
from actmatch_lite.method.setup import classifier_device, reference_pass, resolve
from actmatch_lite.progress import progress_bar
from actmatch_lite.seeding import seed_everything
from actmatch_lite.spec import LoadedModel

TRAIN_BACKGROUND_SEED = 1   # offset of the backgrounds' generator from the training seed (independent draws)
VAL_SIZE = 256              # at most this many training images are held out to pick the checkpoint
VAL_EVERY = 25              # training steps between two checkpoint scores
VAL_SEED = 0                # the validation backgrounds: the same draws at every score, so scores compare


@torch.no_grad()
def _validation_objective(setup, net: MaskUNet, x_val: torch.Tensor, batch_size: int) -> float:
    """Mean objective of the HARD masks on held-out images, every background kind, fixed draws: the checkpoint score."""
    cfg, totals = setup.config, []
    for x in x_val.split(batch_size):
        logits_x, acts_x = reference_pass(setup, x)
        gens = [torch.Generator().manual_seed(VAL_SEED)] * len(x)
        total, _, _ = objective(setup, x, make_fill(x, cfg.fill, mean=setup.mean), logits_x, acts_x,
                                logits_x.argmax(1), net(x), gens, kinds=cfg.backgrounds)
        totals.append(total)
    return float(torch.cat(totals).mean())


def _train_step(setup, net: MaskUNet, opt, x: torch.Tensor, bg_gen: torch.Generator, step: int, hard: bool):
    """One Adam step on the batch mean of the objective; returns the loss, the mean area and the share kept."""
    cfg = setup.config
    logits_x, acts_x = reference_pass(setup, x)
    m_soft = net(x)
    # one generator for the whole batch: draws differ per image and per step, reproducibly
    total, _, met = objective(setup, x, make_fill(x, cfg.fill, mean=setup.mean), logits_x, acts_x,
                              logits_x.argmax(1), m_soft, [bg_gen] * len(x), step=step, hard=hard)
    opt.zero_grad(set_to_none=True)
    total.mean().backward()
    opt.step()
    return (float(total.detach().mean()), float((m_soft > cfg.threshold).float().mean()),
            float((met > 0).float().mean()))


def _fit(setup, net: MaskUNet, x_train, x_val, *, epochs: int, batch_size: int, lr: float, val_every: int,
         gen: torch.Generator, bg_gen: torch.Generator, progress: bool) -> dict:
    """Train ``net`` in place (batch order from ``gen``, backgrounds from ``bg_gen``) and load its best checkpoint;
    returns the run's metadata. Kept whole: the steps, the checkpoint and the progress bar share one loop's state."""
    total_steps = epochs * math.ceil(len(x_train) / batch_size)
    soft_until = round(total_steps * min(1.0, setup.config.soft_steps / setup.config.steps))
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total_steps)
    best = (math.inf, 0, copy.deepcopy(net.state_dict()))
    step, loss = 0, math.nan
    bar = progress_bar(total=total_steps, desc="amortized", disable=not progress)
    with frozen(setup.model), torch.enable_grad(), bar:
        for _ in range(epochs):
            for idx in torch.randperm(len(x_train), generator=gen).split(batch_size):
                loss, area, kept = _train_step(setup, net, opt, x_train[idx].to(x_val.device), bg_gen, step,
                                               hard=step >= soft_until)
                sched.step()
                step += 1
                if step % val_every == 0 or step == total_steps:
                    score = _validation_objective(setup, net, x_val, batch_size)
                    if score < best[0]:
                        best = (score, step, copy.deepcopy(net.state_dict()))
                bar.update()
                bar.set_postfix(loss=f"{loss:.3f}", area=f"{area:.3f}", kept=f"{kept:.2f}",
                                best=f"{best[0]:.3f}@{best[1]}")
    net.load_state_dict(best[2])
    return {"soft_steps": soft_until, "steps": total_steps, "best_step": best[1], "val_objective": best[0],
            "final_loss": loss}


def train_amortized(model: LoadedModel, x_train: torch.Tensor, *, config: ExplainConfig | str | None = None,
                    epochs: int = 2, batch_size: int = 64, seed: int = 0, lr: float = 2e-3,
                    spec: MaskNetSpec | None = None, val_size: int | None = None, val_every: int = VAL_EVERY,
                    progress: bool = True) -> AmortizedExplainer:
    """Train one mask network on ``x_train (N, C, H, W)`` with the per-image objective of ``config``.

    ``config``: the objective (default: the model's preset); its ``lr``, ``steps`` and ``patience`` are per-image
    settings used only by refinement, and its soft warm-up (``soft_steps`` of ``steps``) becomes the same
    fraction of the training steps. Training: Adam at ``lr`` with cosine decay to 0 over ``epochs`` passes of
    shuffled batches of ``batch_size``, loss = batch mean of the per-image objective. The last ``val_size``
    images (default ``min(256, N // 8)``) are held out: every ``val_every`` steps the objective of the hard masks
    on them is measured and the best network is returned (the straight-through phase can collapse a good mask to an
    empty one). ``spec``: the network's shape (default: ``default_spec`` of the image size). Deterministic under
    ``seed`` on the CPU with a fixed thread count.
    """
    setup = resolve(model, config)
    check_images(x_train, channels=setup.channels, min_size=setup.min_size, name="x_train")
    val_size = min(VAL_SIZE, len(x_train) // 8) if val_size is None else val_size
    if epochs < 1 or batch_size < 1 or val_every < 1 or not 0 < val_size < len(x_train):
        raise InputError(f"need epochs, batch_size, val_every >= 1 and 0 < val_size < len(x_train); got {epochs}, "
                         f"{batch_size}, {val_every}, {val_size} with {len(x_train)} images")
    dev = classifier_device(setup.model, None)
    x_train, x_val = x_train[:-val_size], x_train[-val_size:].to(dev)
    gen = seed_everything(seed)
    bg_gen = torch.Generator().manual_seed(seed + TRAIN_BACKGROUND_SEED)
    size = tuple(x_train.shape[-2:])
    net = MaskUNet(x_train.shape[1], size, spec=spec or default_spec(size), init_keep=setup.config.init_keep,
                   seed=seed, activation=ACTIVATION).to(dev)
    fit = _fit(setup, net, x_train, x_val, epochs=epochs, batch_size=batch_size, lr=lr, val_every=val_every,
               gen=gen, bg_gen=bg_gen, progress=progress)
    meta = {"classifier_sha256": classifier_sha256(model.name), "epochs": epochs, "batch_size": batch_size,
            "seed": seed, "lr": lr, "n_train": len(x_train), "n_val": val_size, **fit}
    return AmortizedExplainer(model, net.eval(), setup.config, meta)

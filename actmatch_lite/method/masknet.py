"""The mask generator ``U`` and the straight-through binarisation.

Suhail, Anand, Sethi (2025), arXiv 2509.23051: a lightweight autoencoder maps ``x`` to mask logits,
``m_soft = sigmoid(U(x))``, trained from scratch for each image. The authors' U-Net for 224×224 has about
7.8 M parameters; inputs of 28×28 and 64×64 need only tens of thousands (:func:`default_spec`).

Per-image regime with a batch: :class:`MaskUNet` holds ``n_nets`` independent networks whose weights are
stacked along a leading axis; image ``i`` goes through network ``i``. Every conv runs all networks in one
``conv2d`` call with ``groups = n_nets`` (the input viewed as ``(1, n_nets·C, H, W)``). This is what
``torch.func.vmap`` over ``conv2d`` lowers to anyway, minus the functional-call overhead, and it leaves
plain ``nn.Parameter`` tensors for ``torch.optim.Adam`` (which is elementwise, so the networks stay independent).
With ``n_nets = 1`` the same class is one ordinary network over any batch (the amortized regime, which uses
leaky ReLUs: :data:`ACTIVATIONS`).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

STANDARDISE_EPS = 1e-4  # variance floor of the input standardisation (a flat image stays finite)
LEAKY_RELU_SLOPE = 0.1  # max(h, 0.1 h): the slope of the amortized networks' leaky ReLUs (amortized.explainer)
# The nonlinearity after every conv but the head, by the name MaskUNet(activation=...) takes.
ACTIVATIONS = {"relu": F.relu, "leaky_relu": partial(F.leaky_relu, negative_slope=LEAKY_RELU_SLOPE)}


def straight_through(m_soft: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """``m_st = m_soft + (m - m_soft).detach()`` with ``m = 1[m_soft > threshold]``.

    Forward value: the binary mask ``m``; gradient: that of ``m_soft`` (identity), so losses computed on the
    binary explanation still train the mask network.
    """
    m = (m_soft > threshold).to(m_soft.dtype)
    return m_soft + (m - m_soft).detach()


def _linear_weights(n_in: int, n_out: int, like: torch.Tensor) -> torch.Tensor:
    """``(n_out, n_in)``: row i holds the weights 1-D linear interpolation (``align_corners=False``) gives output i."""
    eye = torch.eye(n_in, dtype=like.dtype, device=like.device)[:, None]
    return F.interpolate(eye, size=n_out, mode="linear", align_corners=False)[:, 0].T


class _BilinearUpsample(torch.autograd.Function):
    """``F.interpolate(z, size, mode="bilinear")`` forward; its exact adjoint as two matrix products backward.

    CUDA's own backward scatters with atomic adds, in whatever order threads finish, so seeded runs differ. Bilinear
    interpolation is separable, ``Z_out = A_h Z A_wᵀ``, so the gradient is ``A_hᵀ G A_w``: fixed-order sums.
    """

    @staticmethod
    def forward(ctx, z, size):
        ctx.in_size = z.shape[-2:]
        return F.interpolate(z, size=size, mode="bilinear", align_corners=False)

    @staticmethod
    def backward(ctx, g):
        (h_in, w_in), (h_out, w_out) = ctx.in_size, g.shape[-2:]
        a_h, a_w = _linear_weights(h_in, h_out, g), _linear_weights(w_in, w_out, g)
        return torch.einsum("oh,bcop,pw->bchw", a_h, g, a_w), None


def upsample_bilinear(z: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear upsampling of ``z (B, C, h, w)`` to ``size`` (``align_corners=False``), deterministic on every device.

    On the CPU this is ``F.interpolate`` itself (its backward is deterministic there); on a GPU the backward is
    :class:`_BilinearUpsample`'s.
    """
    if z.is_cuda:
        return _BilinearUpsample.apply(z, size)
    return F.interpolate(z, size=size, mode="bilinear", align_corners=False)


@dataclass(frozen=True)
class MaskNetSpec:
    """Shape of the U-Net. ``width``: channels at the first level, doubled at every level down;
    ``depth``: number of stride-2 levels; ``stride``: the mask is predicted on a grid ``stride`` times coarser
    than the image and its logits upsampled bilinearly (full-resolution convs dominate the cost on a CPU)."""

    width: int = 8
    depth: int = 2
    stride: int = 1


def default_spec(size: tuple[int, int]) -> MaskNetSpec:
    """Spec scaled to the input size (H, W).

    stride 1 up to 32 px, 2 up to 128 px, 4 above; width 8 below 128 px, 32 above (authors' first level);
    depth: as many stride-2 levels as keep the bottleneck at least 4×4 on the mask grid, 1 to 4.
    """
    side = min(size)
    stride = 1 if side <= 32 else 2 if side <= 128 else 4
    width = 8 if side < 128 else 32
    grid = math.ceil(side / stride)
    depth = int(min(4, max(1, math.floor(math.log2(grid / 4)))))
    return MaskNetSpec(width=width, depth=depth, stride=stride)


def standardise(x: torch.Tensor, eps: float = STANDARDISE_EPS) -> torch.Tensor:
    """``(x - mean) / sqrt(var + eps)`` per image and channel over the pixels.

    The network then sees inputs of unit scale whatever the image's brightness and contrast; a network
    trained from scratch in about a hundred steps learns several times faster this way.
    """
    mu = x.mean((-2, -1), keepdim=True)
    var = (x - mu).pow(2).mean((-2, -1), keepdim=True)
    return (x - mu) / torch.sqrt(var + eps)


class StackedConv2d(nn.Module):
    """``n`` independent ``k×k`` convolutions with weights ``(n, C_out, C_in, k, k)``, evaluated in one call."""

    def __init__(self, n: int, c_in: int, c_out: int, kernel: int, stride: int = 1):
        super().__init__()
        self.n, self.c_in, self.c_out, self.kernel, self.stride = n, c_in, c_out, kernel, stride
        self.weight = nn.Parameter(torch.empty(n, c_out, c_in, kernel, kernel))
        self.bias = nn.Parameter(torch.empty(n, c_out))

    def init_net(self, i: int, generator: torch.Generator) -> None:
        """PyTorch's default conv init for network ``i``: weight and bias ``U(-1/√fan_in, 1/√fan_in)``."""
        bound = 1 / math.sqrt(self.c_in * self.kernel ** 2)
        with torch.no_grad():
            w = torch.rand(self.weight.shape[1:], generator=generator, dtype=self.weight.dtype)
            b = torch.rand(self.bias.shape[1:], generator=generator, dtype=self.bias.dtype)
            self.weight[i] = ((2 * w - 1) * bound).to(self.weight.device)
            self.bias[i] = ((2 * b - 1) * bound).to(self.bias.device)

    def forward(self, h: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
        """``h (B, C_in, H, W)``. With one network: any ``B``. Otherwise ``B`` = number of networks used:
        all of them, or those in ``index`` (image ``j`` of ``h`` goes through network ``index[j]``)."""
        pad = self.kernel // 2
        if self.n == 1:
            return F.conv2d(h, self.weight[0], self.bias[0], self.stride, pad)
        w, b = (self.weight, self.bias) if index is None else (self.weight[index], self.bias[index])
        g = w.shape[0]
        if h.shape[0] != g:
            raise ValueError(f"{g} networks need a batch of {g} images, got {h.shape[0]}")
        w = w.reshape(g * self.c_out, self.c_in, self.kernel, self.kernel)
        y = F.conv2d(h.reshape(1, g * self.c_in, *h.shape[-2:]), w, b.reshape(-1), self.stride, pad, groups=g)
        return y.view(g, self.c_out, *y.shape[-2:])


class MaskUNet(nn.Module):
    """``n_nets`` independent U-Nets mapping ``x (B, C, H, W)`` to ``m_soft (B, 1, H, W)``.

    The input is standardised per image and channel (:func:`standardise`). Encoder: a stem conv (kernel
    ``2·stride+1``, stride ``stride``) to ``width`` channels, then ``depth`` stride-2 3×3 convs doubling the
    channels. Decoder: per level, nearest upsampling to the skip's size,
    concatenation with the skip, a 3×3 conv. Head: 1×1 conv to one logit, bilinear upsampling to (H, W)
    (:func:`upsample_bilinear`), sigmoid. ``activation`` after every conv but the head: ``"relu"``, or
    ``"leaky_relu"`` ``max(h, LEAKY_RELU_SLOPE·h)`` (see :data:`ACTIVATIONS`); no normalisation layers (per-image
    nets see a batch of one).

    Network ``i`` is initialised from ``generators[i]`` (or ``torch.Generator().manual_seed(seed + i)``), so an
    image explained alone or inside a batch starts from the same weights. The head's bias starts at
    ``logit(init_keep)``, so the first masks keep about ``init_keep`` of the image.
    """

    def __init__(self, in_channels: int, size: tuple[int, int], *, n_nets: int = 1, spec: MaskNetSpec | None = None,
                 init_keep: float = 0.5, seed: int = 0, generators: Sequence[torch.Generator] | None = None,
                 activation: str = "relu"):
        super().__init__()
        if not 0 < init_keep < 1:
            raise ValueError(f"init_keep must be in (0, 1), got {init_keep}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        self.activation = activation
        self.spec = spec or default_spec(size)
        self.size, self.n_nets = tuple(size), n_nets
        w, s = self.spec.width, self.spec.stride
        widths = [w * 2 ** level for level in range(self.spec.depth + 1)]
        self.stem = StackedConv2d(n_nets, in_channels, w, 2 * s + 1, stride=s)
        self.down = nn.ModuleList(StackedConv2d(n_nets, widths[i], widths[i + 1], 3, stride=2)
                                  for i in range(self.spec.depth))
        self.up = nn.ModuleList(StackedConv2d(n_nets, widths[i + 1] + widths[i], widths[i], 3)
                                for i in range(self.spec.depth))
        self.head = StackedConv2d(n_nets, w, 1, 1)
        if generators is None:
            generators = [torch.Generator().manual_seed(seed + i) for i in range(n_nets)]
        if len(generators) != n_nets:
            raise ValueError(f"need {n_nets} generators, got {len(generators)}")
        convs = [m for m in self.modules() if isinstance(m, StackedConv2d)]
        for i, gen in enumerate(generators):
            for conv in convs:
                conv.init_net(i, gen)
        with torch.no_grad():
            self.head.bias.fill_(math.log(init_keep / (1 - init_keep)))

    def logits(self, x: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
        """Mask logits ``(B, 1, H, W)``; ``index`` picks the networks for the images (:class:`StackedConv2d`)."""
        act = ACTIVATIONS[self.activation]
        h = act(self.stem(standardise(x), index))
        skips = [h]
        for conv in self.down:
            h = act(conv(h, index))
            skips.append(h)
        for level in reversed(range(self.spec.depth)):
            skip = skips[level]
            h = F.interpolate(h, size=skip.shape[-2:], mode="nearest")
            h = act(self.up[level](torch.cat([h, skip], 1), index))
        z = self.head(h, index)
        if z.shape[-2:] != x.shape[-2:]:
            z = upsample_bilinear(z, tuple(x.shape[-2:]))
        return z

    def forward(self, x: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
        """``m_soft = sigmoid(U(x))``, ``(B, 1, H, W)`` in (0, 1)."""
        return torch.sigmoid(self.logits(x, index))

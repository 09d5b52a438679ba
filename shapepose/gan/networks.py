"""Network helpers every GAN stage shares: DCGAN-style initialization, spectral norm, freezing,
output layers kept in fp32 under mixed precision."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

INIT_STD = 0.02  # weights ~ N(0, 0.02) (seed 002 section 6.1.1; the Liquid Warping GAN code)


def init_weights(module: nn.Module, std: float = INIT_STD) -> nn.Module:
    """Conv and transposed-conv weights ~ N(0, std), biases 0 (call before spectral norm)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return module


def spectral_norm_convs(net: nn.Sequential) -> None:
    """Seed 004's spectral norm: every Conv2d of `net` divided by its largest singular value
    (one power iteration per forward pass in training mode), in place."""
    for i, layer in enumerate(net):
        if isinstance(layer, nn.Conv2d):
            net[i] = nn.utils.parametrizations.spectral_norm(layer)


def in_fp32(layers: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """layers(x) in fp32 under a low-precision autocast (a no-op in fp32): a generator's output
    layer, whose rounding the losses would see."""
    with torch.autocast(x.device.type, enabled=False):
        return layers(x.float())


def set_requires_grad(modules: Iterable[nn.Module], flag: bool) -> None:
    for module in modules:
        for p in module.parameters():
            p.requires_grad_(flag)

"""How big a model is: the one parameter count every stage logs and tests check."""

from __future__ import annotations

from torch import nn


def count_parameters(module: nn.Module) -> int:
    """Number of scalars in `module`'s parameters (trainable or not; shared ones counted once)."""
    return sum(p.numel() for p in module.parameters())

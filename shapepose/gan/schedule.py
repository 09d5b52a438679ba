"""Seed 004's TTUR schedule: a learning rate held, then decayed linearly to a final rate."""

from __future__ import annotations

import numpy as np


def linear_decay(lr: float, lr_final: float | None, epoch: float, decay_start_epoch: float,
                 decay_epochs: float) -> float:
    """`lr` until `decay_start_epoch`, then linearly to `lr_final` over `decay_epochs` epochs,
    then `lr_final` (None: constant `lr`). `epoch` may be fractional (step / steps per epoch)."""
    if lr_final is None:
        return lr
    t = float(np.clip((epoch - decay_start_epoch) / decay_epochs, 0.0, 1.0))
    return lr + t * (lr_final - lr)

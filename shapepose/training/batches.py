"""Which examples a training step sees, and the generator for its other random choices.

Every trainer draws its batches here, as a pure function of (seed, labels, step):

- `epoch_walk`: the i-th example of step t is position t * B + i of an endless walk through the
  dataset, in a fresh permutation each epoch; the permutation of epoch e comes from
  `derive_rng(seed, *labels, "epoch", e)`. So every example is seen once per epoch, the order
  differs between epochs, and a rerun or a resumed run draws exactly the same batches. (The
  original NPT, Pose2Mesh and LWGAN loaders fix their "random" pairs once and repeat them every
  epoch; this walk does not.)
- `step_rng` / `step_generator`: numpy and torch generators for step t's augmentations, pool
  swaps and the like, from `(seed, *labels, "step", t)`.

labels name the stage and the stream, e.g. ("style_transfer", "synthetic").
"""

from __future__ import annotations

import math

import numpy as np

from shapepose.seeding import derive_rng
from shapepose.training.rng import derive_torch_generator


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Steps that cover n examples once: ceil(n / batch_size)."""
    return math.ceil(n / batch_size)


def epoch_of(step: int, n: int, batch_size: int) -> int:
    """The epoch (0-based) of the first example of step `step`'s batch."""
    return step * batch_size // n


def epoch_walk(n: int, batch_size: int, step: int, seed: int, *labels: str) -> np.ndarray:
    """(batch_size,) int64 indices into n examples for step `step` (0-based).

    A batch may straddle two epochs; a batch larger than n repeats examples, each epoch at most
    once.
    """
    if n < 1:
        raise ValueError("epoch_walk needs at least one example")
    if not labels:
        raise ValueError("epoch_walk needs labels naming the stage and stream")
    positions = step * batch_size + np.arange(batch_size)
    out = np.empty(batch_size, dtype=np.int64)
    for epoch in np.unique(positions // n):
        permutation = derive_rng(seed, *labels, "epoch", int(epoch)).permutation(n)
        here = positions // n == epoch
        out[here] = permutation[positions[here] % n]
    return out


def step_rng(seed: int, step: int, *labels: str) -> np.random.Generator:
    """numpy generator of one step's random choices (augmentations, subsets of views, ...)."""
    return derive_rng(seed, *labels, "step", int(step))


def step_generator(seed: int, step: int, *labels: str):
    """torch.Generator (CPU) of one step's random choices (flips, pool swaps, penalty mixing)."""
    return derive_torch_generator(seed, *labels, "step", int(step))

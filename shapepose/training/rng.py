"""The random state of a training process: seeding it from the config seed, capturing and
restoring it in checkpoints so a resumed run draws exactly what an uninterrupted one would.

Stages draw their batches and augmentations from named streams (`shapepose.training.batches`);
the global generators seeded here serve what libraries draw on their own (dropout, weight
initialisation, torchvision's transforms).
"""

from __future__ import annotations

import logging
import random

import numpy as np
import torch

from shapepose.seeding import derive_seed

log = logging.getLogger("shapepose.training")


def derive_torch_generator(seed: int, *labels: str | int, device: str = "cpu") -> torch.Generator:
    """A `torch.Generator` on `device` seeded with `derive_seed(seed, *labels)`."""
    return torch.Generator(device=device).manual_seed(derive_seed(seed, *labels))


def capture_rng_state(device: torch.device) -> dict:
    """Every RNG a step may draw from: torch CPU, CUDA (when used), numpy global, python random."""
    state = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }
    if device.type == "cuda" and torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict, device: torch.device) -> None:
    """Put back the RNG states of `capture_rng_state`, so a resumed run draws the same numbers."""
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    cuda = state.get("cuda")
    if device.type == "cuda" and torch.cuda.is_available():
        if cuda is not None and len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)
        else:
            log.warning("checkpoint holds no CUDA RNG state for %d device(s); CUDA random "
                        "numbers after resume will differ from an uninterrupted run",
                        torch.cuda.device_count())


def seed_everything(seed: int, *labels: str) -> None:
    """Seed torch (CPU and CUDA), numpy's global and python's `random` for one named purpose.

    `seed_everything(seed, "style_transfer", "init")` before building a stage's networks makes
    their initial weights a function of the config seed; the trainer seeds the global generators
    with (seed, stage, "global") before its first step. All three get `derive_seed(seed, *labels)`.
    """
    if not labels:
        raise ValueError("seed_everything needs labels naming the stage and purpose")
    value = derive_seed(seed, *labels)
    torch.manual_seed(value)  # also seeds every CUDA device
    np.random.seed(value % 2**32)
    random.seed(value)

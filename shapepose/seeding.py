"""One way to derive random generators from the config seed, the same in every process.

Every random draw of the pipeline comes from a stream named by text labels, the stage first and
then the purpose, with integer labels only for indices (a step, an epoch, a frame):

    derive_rng(seed, "style_transfer", "synthetic", "epoch", 3)    numpy Generator
    derive_seed(seed, "style_transfer", "init")                     one 63-bit integer

and, for torch (shapepose.training.rng, so this module needs numpy alone):

    derive_torch_generator(seed, "shape_pose", "step", 120)         torch.Generator

All read the same words, so a stream is fully named by its labels whatever the library.
"""

from __future__ import annotations

import hashlib

import numpy as np

RNG_NOTE = ("numpy default_rng(SeedSequence([seed, *labels])), a text label replaced by the first "
            "8 bytes of its utf-8 sha256 read as a little-endian unsigned integer")


def stable_hash(label: str) -> int:
    """A 64-bit hash of a text label that, unlike Python's `hash`, is the same in every process."""
    return int.from_bytes(hashlib.sha256(label.encode("utf-8")).digest()[:8], "little")


def _words(seed: int, labels: tuple) -> list[int]:
    words = [int(seed)]
    for label in labels:
        if isinstance(label, str):
            words.append(stable_hash(label))
        elif isinstance(label, (int, np.integer)) and not isinstance(label, bool) and label >= 0:
            words.append(int(label))
        else:
            raise ValueError(f"seed labels are text or non-negative integers, got {label!r}")
    return words


def derive_rng(seed: int, *labels: str | int) -> np.random.Generator:
    """The generator for one named purpose, e.g. `derive_rng(seed, "motion", "50002", "knees")`.

    Different label tuples give independent streams, so adding a subject or a frame never changes
    the random numbers of another. Integer labels (frame indices) must be non-negative.
    """
    return np.random.default_rng(np.random.SeedSequence(_words(seed, labels)))


def derive_seed(seed: int, *labels: str | int) -> int:
    """A non-negative 63-bit integer for libraries that take a seed (torch.manual_seed, random).

    The first two 32-bit words of the same SeedSequence that `derive_rng` starts from.
    """
    low, high = np.random.SeedSequence(_words(seed, labels)).generate_state(2, np.uint32)
    return (int(high) << 32 | int(low)) & (2**63 - 1)

"""One way to derive random generators from the config seed, the same in every process."""

from __future__ import annotations

import hashlib

import numpy as np

RNG_NOTE = ("numpy default_rng(SeedSequence([seed, *labels])), a text label replaced by the first "
            "8 bytes of its utf-8 sha256 read as a little-endian unsigned integer")


def stable_hash(label: str) -> int:
    """A 64-bit hash of a text label that, unlike Python's `hash`, is the same in every process."""
    return int.from_bytes(hashlib.sha256(label.encode("utf-8")).digest()[:8], "little")


def derive_rng(seed: int, *labels: str | int) -> np.random.Generator:
    """The generator for one named purpose, e.g. `derive_rng(seed, "motion", "50002", "knees")`.

    Different label tuples give independent streams, so adding a subject or a frame never changes
    the random numbers of another. Integer labels (frame indices) must be non-negative.
    """
    words = [int(seed)] + [stable_hash(x) if isinstance(x, str) else int(x) for x in labels]
    return np.random.default_rng(np.random.SeedSequence(words))

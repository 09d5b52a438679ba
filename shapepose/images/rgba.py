"""RGBA images shared by every stage: the reader, seed 002's colour correction, the resize, masks.

The colour correction (seed 002 section 4.1.1.1) makes "RGB == (0, 0, 0)" mean "no car": RGB is
zeroed where alpha is 0, and car pixels that are exactly black become (1, 1, 1). The cut-outs,
the normalized cut-outs, the style transfer's inputs all go through it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from shapepose.errors import InputError


def _read(path: str | Path, mode: str, what: str) -> np.ndarray:
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert(mode), dtype=np.uint8)
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise InputError(path, f"cannot read {what}: {exc}") from None


def read_rgba(path: str | Path, what: str = "image") -> np.ndarray:
    """(H, W, 4) uint8 of an image file; an unreadable file raises InputError naming it (and `what`)."""
    return _read(path, "RGBA", what)


def read_photo(path: str | Path) -> np.ndarray:
    """A photo as (H, W, 3) uint8 RGB; grayscale (and CMYK, palette) photos become 3 channels."""
    return _read(path, "RGB", "photo")


def colour_correct(rgba: np.ndarray) -> np.ndarray:
    """(H, W, 4) uint8 -> the same with RGB zeroed where alpha is 0 and black car pixels (1, 1, 1)."""
    alpha = rgba[..., 3]
    rgb = np.where(alpha[..., None] > 0, rgba[..., :3], 0).astype(np.uint8)
    rgb[(alpha > 0) & (rgb == 0).all(axis=-1)] = 1
    return np.dstack([rgb, alpha])


def resize_rgba(rgba: np.ndarray, size: int) -> np.ndarray:
    """(s, s, 4) uint8 -> (size, size, 4) uint8, box filter on premultiplied colour and alpha.

    Edge pixels get fractional alpha like antialiased renders, and colour is not darkened by the
    zero background; the result is colour-corrected.
    """
    alpha = rgba[..., 3].astype(np.float32) / 255.0
    planes = [rgba[..., c].astype(np.float32) * alpha for c in range(3)] + [alpha]
    small = [np.asarray(Image.fromarray(p, mode="F").resize((size, size), Image.Resampling.BOX))
             for p in planes]
    alpha_out = np.clip(np.rint(small[3] * 255.0), 0, 255).astype(np.uint8)
    with np.errstate(invalid="ignore", divide="ignore"):
        rgb = np.stack(small[:3], axis=-1) / small[3][..., None]
    rgb = np.where(alpha_out[..., None] > 0, np.nan_to_num(rgb), 0.0)
    rgb = np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
    return colour_correct(np.dstack([rgb, alpha_out]))


def mask_disagreement(mask: np.ndarray, reference: np.ndarray, *,
                      relative_to: Literal["image", "reference"] = "image") -> np.ndarray:
    """Share of pixels where two masks disagree: |mask XOR reference| over the last two axes.

    mask, reference: (..., H, W) bool. `relative_to="image"` divides by H * W (the style
    transfer's check that G keeps the outline); `relative_to="reference"` divides by the pixels of
    the reference (seed 002 section 6.3's |predicted XOR real| / |real|) and raises ValueError
    when it is empty. Returns (...) float64.
    """
    mask = np.asarray(mask, dtype=bool)
    reference = np.asarray(reference, dtype=bool)
    if mask.shape != reference.shape:
        raise ValueError(f"masks differ in shape: {mask.shape} vs {reference.shape}")
    if mask.ndim < 2:
        raise ValueError(f"expected (..., H, W) masks, got shape {mask.shape}")
    differ = np.count_nonzero(mask ^ reference, axis=(-2, -1))
    if relative_to == "image":
        return np.asarray(differ / (mask.shape[-2] * mask.shape[-1]))
    if relative_to == "reference":
        area = np.count_nonzero(reference, axis=(-2, -1))
        if np.any(area == 0):
            raise ValueError("the reference mask has no pixel: the disagreement is undefined")
        return np.asarray(differ / area)
    raise ValueError(f"relative_to must be 'image' or 'reference', got {relative_to!r}")

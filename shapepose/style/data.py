"""The two domains of the style transfer: synthetic renders X (DPC layout) and real cut-outs Y.

Every image is read as RGBA and prepared as seed 002 section 4.1.1.1 says: RGB is zeroed where
alpha is 0, car pixels that are pure black become (1, 1, 1), and the RGB is mapped to [-1, 1],
so that -1 in every channel means "no car" (what the Alpha function of the losses tests).
Images not at the training size are resized with the same premultiplied box filter the
normalization stage uses.

Batches come from `shapepose.training.batches.epoch_walk`, one walk per domain; one epoch is
max(|X|, |Y|) images, as in the stock CycleGAN.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from shapepose.errors import InputError
from shapepose.images.dpc import read_dpc
from shapepose.images.rgba import colour_correct, read_rgba, resize_rgba


def prepare_rgba(rgba: np.ndarray, size: int, path: str | Path = "?") -> np.ndarray:
    """Square RGBA -> (size, size, 4) uint8 with seed 002's colour correction applied."""
    if rgba.ndim != 3 or rgba.shape[2] != 4 or rgba.shape[0] != rgba.shape[1]:
        raise InputError(path, f"expected a square RGBA image, got shape {rgba.shape}")
    if rgba.shape[0] != size:
        rgba = resize_rgba(rgba, size)
    return colour_correct(rgba)


def rgba_to_signed(rgba: np.ndarray) -> torch.Tensor:
    """(H, W, 4) uint8 -> (3, H, W) float32 RGB in [-1, 1] (alpha is implied by the RGB)."""
    return torch.from_numpy(np.ascontiguousarray(rgba[..., :3])).permute(2, 0, 1).float() / 127.5 - 1.0


@dataclass(frozen=True)
class ImageRef:
    """One image of a domain: its file and a stable name (model/view, or the cut-out's file)."""

    path: Path
    name: str


def synthetic_refs(root: str | Path, split: str) -> list[ImageRef]:
    """Every view of every model of a DPC split, in split-file order, views ascending."""
    dataset = read_dpc(root)
    return [ImageRef(dataset.image_path(m, v), f"{m}/{v}")
            for m in dataset.split(split) for v in range(dataset.n_views)]


def cutout_refs(folder: str | Path) -> list[ImageRef]:
    """The normalized real cut-outs of one folder (*.png), sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(folder, "cut-out folder does not exist")
    return [ImageRef(p, p.name) for p in sorted(folder.glob("*.png"))]


class Domain:
    """A list of images read on demand and kept (prepared) in an LRU cache of `cache` images."""

    def __init__(self, refs: list[ImageRef], size: int, name: str, cache: int = 4096):
        if not refs:
            raise InputError(name, "no images in this domain")
        self.refs, self.size, self.name, self.cache = list(refs), size, name, cache
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()

    def __len__(self) -> int:
        return len(self.refs)

    def rgba(self, index: int) -> np.ndarray:
        if index in self._cache:
            self._cache.move_to_end(index)
            return self._cache[index]
        ref = self.refs[index]
        image = prepare_rgba(read_rgba(ref.path), self.size, ref.path)
        self._cache[index] = image
        if len(self._cache) > self.cache:
            self._cache.popitem(last=False)
        return image

    def tensor(self, indices, flips=None) -> torch.Tensor:
        """(len(indices), 3, S, S) in [-1, 1]; `flips[i]` mirrors image i left-right."""
        images = [rgba_to_signed(self.rgba(int(i))) for i in indices]
        if flips is not None:
            images = [im.flip(-1) if f else im for im, f in zip(images, flips)]
        return torch.stack(images)

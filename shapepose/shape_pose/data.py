"""Views of a DPC-layout set (original or stylized) as the shape-and-pose model sees them.

Each render is prepared as DPC's `create_tf_records.py` does: RGB composited over a white
background with its alpha, mapped to [-1, 1] (DPC's `images * 2 - 1`); the mask is the alpha in
[0, 1], box-filtered to the projection's resolution. Images not at the model's input size are
resized with the premultiplied box filter of the normalization stage. Real cut-outs (RGBA PNGs)
are prepared the same way, so one function serves both.

Training batches are a pure function of (seed, step): `models_per_batch` models from an endless
walk through a fresh permutation of the training models each epoch, and for each a random subset
of `views_per_model` of its views, so a resumed run draws what an uninterrupted one would.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from shapepose.errors import InputError
from shapepose.images.dpc import pose_from_position, read_dpc
from shapepose.images.rgba import resize_rgba
from shapepose.training.batches import epoch_walk, step_rng


def prepare_view(rgba: np.ndarray, image_size: int, mask_size: int,
                 path: str | Path = "?") -> tuple[np.ndarray, np.ndarray]:
    """Square RGBA uint8 -> (image (3, S, S) float32 in [-1, 1] over white, mask (G, G) float32)."""
    if rgba.ndim != 3 or rgba.shape[2] != 4 or rgba.shape[0] != rgba.shape[1]:
        raise InputError(path, f"expected a square RGBA image, got shape {rgba.shape}")
    small = rgba if rgba.shape[0] == image_size else resize_rgba(rgba, image_size)
    alpha = small[..., 3:4].astype(np.float32) / 255.0
    rgb = small[..., :3].astype(np.float32) / 255.0 * alpha + (1.0 - alpha)
    image = np.ascontiguousarray((rgb * 2.0 - 1.0).transpose(2, 0, 1), dtype=np.float32)
    full_alpha = rgba[..., 3].astype(np.float32) / 255.0
    if rgba.shape[0] == mask_size:
        mask = full_alpha
    else:
        mask = np.asarray(Image.fromarray(full_alpha, mode="F").resize(
            (mask_size, mask_size), Image.Resampling.BOX), dtype=np.float32)
    return image, np.clip(mask, 0.0, 1.0)


class ViewSet:
    """The models of one split of a DPC-layout set: prepared views, masks, poses, points.

    Views are read on first use and kept (prepared) in an LRU cache of `cache` models.
    """

    def __init__(self, root: str | Path, split: str, image_size: int, mask_size: int,
                 cache: int = 100000):
        self.data = read_dpc(root)
        self.root = Path(root)
        self.split = split
        self.models = self.data.split(split)
        if not self.models:
            raise InputError(self.root / "splits", f"split {split!r} lists no models")
        self.n_views = self.data.n_views
        self.image_size, self.mask_size, self.cache = image_size, mask_size, cache
        self._cache: OrderedDict[int, tuple] = OrderedDict()

    def __len__(self) -> int:
        return len(self.models)

    def model(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(images (V, 3, S, S), masks (V, G, G), poses (V, 4)) of the index-th model."""
        if index in self._cache:
            self._cache.move_to_end(index)
            return self._cache[index]
        model_id = self.models[index]
        images, masks, poses = [], [], []
        for view in range(self.n_views):
            path = self.data.image_path(model_id, view)
            image, mask = prepare_view(self.data.load_view(model_id, view), self.image_size,
                                       self.mask_size, path)
            images.append(image)
            masks.append(mask)
            camera = self.data.load_camera(model_id, view)
            try:
                poses.append(pose_from_position(camera["position"]))
            except ValueError as exc:
                raise InputError(self.data.render_dir / model_id / f"camera_{view}.mat",
                                 str(exc)) from None
        entry = (np.stack(images), np.stack(masks), np.stack(poses).astype(np.float32))
        self._cache[index] = entry
        if len(self._cache) > self.cache:
            self._cache.popitem(last=False)
        return entry

    def points(self, index: int) -> np.ndarray:
        """(N, 3) float32 ground-truth surface points of the index-th model (ShapeNet frame)."""
        return self.data.load_points(self.models[index])

    def batch(self, models: np.ndarray, views: np.ndarray) -> dict[str, torch.Tensor]:
        """images (B, W, 3, S, S), masks (B, W, G, G), poses (B, W, 4) for models[b]' views[b]."""
        images, masks, poses = [], [], []
        for m, vs in zip(models, views):
            im, mk, ps = self.model(int(m))
            images.append(im[vs])
            masks.append(mk[vs])
            poses.append(ps[vs])
        return {"images": torch.from_numpy(np.stack(images)),
                "masks": torch.from_numpy(np.stack(masks)),
                "poses": torch.from_numpy(np.stack(poses))}


def batch_choice(n_models: int, n_views: int, models_per_batch: int, views_per_model: int,
                 step: int, seed: int, stage: str = "shape_pose") -> tuple[np.ndarray, np.ndarray]:
    """(models (B,), views (B, W)) of training step `step`: a pure function of (seed, step).

    Models: `epoch_walk(..., stage, "models")`; views: `step_rng(seed, step, stage, "views")`.
    """
    if views_per_model > n_views:
        raise ValueError(f"views_per_model {views_per_model} exceeds the {n_views} views per model")
    models = epoch_walk(n_models, models_per_batch, step, seed, stage, "models")
    rng = step_rng(seed, step, stage, "views")
    views = np.stack([rng.permutation(n_views)[:views_per_model] for _ in range(models_per_batch)])
    return models, views


def cutout_paths(folder: str | Path) -> list[Path]:
    """The real cut-outs of one folder (*.png), sorted by name; a missing folder is an error."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(folder, "cut-out folder does not exist")
    return sorted(folder.glob("*.png"))

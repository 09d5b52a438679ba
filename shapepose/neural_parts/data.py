"""Frames for Neural Parts: the train/val/test split, and batches drawn from the sample files.

Split (by sequence, then by frame): every frame of a sequence listed in `test_sequences` is a test
frame; of the other sequences, the frames at positions 0, val_stride, 2 val_stride, ... of each
sequence are validation frames and the rest train. A batch is a pure function of (seed, step):
the frames walk the training split in a fresh order each epoch, and the stored surface and volume
rows and the sphere points come from the step's own stream (`shapepose.training.batches`), so a
resumed run sees the same batches.
"""

from __future__ import annotations

import collections
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import torch
from PIL import Image

from shapepose.errors import InputError
from shapepose.images.rgba import read_rgba
from shapepose.meshes import frame_name
from shapepose.neural_parts.model import sphere_points
from shapepose.sampling.store import read_surface_samples, read_volume_samples
from shapepose.training.batches import epoch_walk, step_rng

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SequenceFiles:
    """The inputs of one sequence: surface and volume sample files and the render directory."""

    sequence: str
    surface: str
    volume: str
    renders: str


@dataclass(frozen=True)
class FrameRef:
    """One frame of one sequence, with the files it is read from."""

    files: SequenceFiles
    frame: int

    @property
    def name(self) -> str:
        return f"{self.files.sequence}/{self.frame}"

    @property
    def render(self) -> Path:
        return Path(self.files.renders) / Path(frame_name(self.frame)).with_suffix(".png").name


def stored_frames(path: str | os.PathLike) -> list[int]:
    """Source frame indices held by a sample file (read without decoding the samples)."""
    try:
        with h5py.File(path, "r") as h5:
            return [int(f) for f in h5["frames"][()]]
    except (OSError, KeyError) as error:
        raise InputError(path, f"cannot read the frame list of the sample file ({error})") from None


def sequence_frames(files: SequenceFiles) -> list[FrameRef]:
    """Every frame of a sequence, checked to be in both sample files and rendered."""
    frames = stored_frames(files.surface)
    volume = stored_frames(files.volume)
    if frames != volume:
        raise InputError(files.volume, f"frames {volume} differ from those of {files.surface}: {frames}")
    refs = [FrameRef(files, f) for f in frames]
    for ref in refs:
        if not ref.render.is_file():
            raise InputError(ref.render, "render of this frame is missing", frame=ref.frame)
    return refs


def split_frames(sequences: list[SequenceFiles], test_sequences: list[str],
                 val_stride: int) -> dict[str, list[FrameRef]]:
    """{"train", "val", "test"} -> frames (see the module docstring for the rule)."""
    split = {"train": [], "val": [], "test": []}
    for files in sequences:
        frames = sequence_frames(files)
        if files.sequence in test_sequences:
            split["test"].extend(frames)
            continue
        for position, ref in enumerate(frames):
            split["val" if position % val_stride == 0 else "train"].append(ref)
    return split


def load_image(path: str | os.PathLike, size: int) -> np.ndarray:
    """An RGBA render composited over white and resized: (3, size, size) float32 in [0, 1]."""
    rgba = Image.fromarray(read_rgba(path, what="render"))
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    rgb = Image.alpha_composite(white, rgba).convert("RGB")
    if rgb.size != (size, size):
        rgb = rgb.resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(rgb, dtype=np.float32).transpose(2, 0, 1) / 255.0


@dataclass(frozen=True)
class FrameSamples:
    """Everything stored for one frame: image (3, S, S); surface points and unit normals (Ns, 3);
    volume points (Nv, 3), inside (Nv,) bool, weights (Nv,) summing to 1 over the frame."""

    image: np.ndarray
    surface_points: np.ndarray
    surface_normals: np.ndarray
    volume_points: np.ndarray
    inside: np.ndarray
    weights: np.ndarray


def load_frame_samples(ref: FrameRef, image_size: int) -> FrameSamples:
    surface = read_surface_samples(ref.files.surface, frame=ref.frame)
    volume = read_volume_samples(ref.files.volume, frame=ref.frame)
    return FrameSamples(
        image=load_image(ref.render, image_size),
        surface_points=surface["points"], surface_normals=surface["normals"],
        volume_points=volume["points"], inside=volume["inside"], weights=volume["weights"],
    )


class FrameCache:
    """Frames read on demand and kept, up to `capacity`, least recently used out first.

    The demo's frames all fit; a DFAUST run (about 41k frames of 100k points) reads as it goes.
    """

    def __init__(self, image_size: int, capacity: int = 256):
        self.image_size = image_size
        self.capacity = capacity
        self._frames: collections.OrderedDict[FrameRef, FrameSamples] = collections.OrderedDict()

    def __call__(self, ref: FrameRef) -> FrameSamples:
        if ref in self._frames:
            self._frames.move_to_end(ref)
            return self._frames[ref]
        samples = load_frame_samples(ref, self.image_size)
        self._frames[ref] = samples
        if len(self._frames) > self.capacity:
            self._frames.popitem(last=False)
        return samples


def _rows(rng: np.random.Generator, available: int, wanted: int) -> np.ndarray:
    """Random stored rows (never a prefix: rows are in Morton order); repeats only if too few."""
    return rng.choice(available, size=wanted, replace=wanted > available)


def draw_batch(frames: list[FrameRef], cache: FrameCache, *, seed: int, stage: str, step: int,
               batch_size: int, n_surface: int, n_volume: int, n_sphere: int, radius: float,
               device: torch.device | None = None, part: slice = slice(None)
               ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """The batch of training step `step` and the sphere points it uses: a pure function of
    (seed, step, frames). Frames: `epoch_walk(..., stage, "frames")` (each once per epoch);
    stored rows and sphere points: `step_rng(seed, step, stage, "points")`. Tensors: images
    (B, 3, S, S), surface_points and surface_normals (B, n_surface, 3), volume_points
    (B, n_volume, 3), inside (B, n_volume) bool, weights (B, n_volume); sphere (n_sphere, 3);
    on `device`, or on the host when None.

    `part`: the frames of the batch to return (a training process's slice of the global batch).
    The rows of every frame of the batch are drawn all the same, in order, so the slices of
    several processes are the frames and rows one process draws (each process reads the whole
    batch's frames: their row counts decide the draws).
    """
    chosen = epoch_walk(len(frames), batch_size, step, seed, stage, "frames")
    rng = step_rng(seed, step, stage, "points")
    kept = range(batch_size)[part]
    parts = collections.defaultdict(list)
    for position, index in enumerate(chosen):
        samples = cache(frames[int(index)])
        s = _rows(rng, len(samples.surface_points), n_surface)
        v = _rows(rng, len(samples.volume_points), n_volume)
        if position not in kept:
            continue
        parts["images"].append(samples.image)
        parts["surface_points"].append(samples.surface_points[s])
        parts["surface_normals"].append(samples.surface_normals[s])
        parts["volume_points"].append(samples.volume_points[v])
        parts["inside"].append(samples.inside[v])
        parts["weights"].append(samples.weights[v])
    batch = {key: torch.from_numpy(np.stack(values)) for key, values in parts.items()}
    sphere = sphere_points(n_sphere, radius, rng)
    if device is not None:
        batch = {key: value.to(device) for key, value in batch.items()}
        sphere = sphere.to(device)
    return batch, sphere


def frame_tensors(samples: FrameSamples, device: torch.device) -> dict[str, torch.Tensor]:
    """One frame's arrays as a batch of one, every stored point kept (for evaluation)."""
    fields = ("image", "surface_points", "surface_normals", "volume_points", "inside", "weights")
    out = {key: torch.from_numpy(np.asarray(getattr(samples, key))[None]).to(device) for key in fields}
    out["images"] = out.pop("image")
    return out


def mean_surface_point(frames: list[FrameRef], cache: FrameCache, limit: int = 64) -> np.ndarray:
    """Mean of the surface samples of up to `limit` evenly spaced frames: (3,) float32."""
    picked = np.unique(np.linspace(0, len(frames) - 1, min(limit, len(frames))).round().astype(int))
    means = [cache(frames[i]).surface_points.mean(axis=0) for i in picked]
    return np.mean(means, axis=0).astype(np.float32)

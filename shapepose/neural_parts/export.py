"""What people look at: each primitive as a coloured mesh, and the input beside a render of the union."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from shapepose.images.rgba import read_rgba
from shapepose.io import atomic_dir, write_ply
from shapepose.neural_parts.data import FrameRef, frame_tensors, load_frame_samples, split_frames
from shapepose.neural_parts.metrics import primitive_meshes
from shapepose.neural_parts.train import evenly_spaced, load_model, sequence_files
from shapepose.render import Camera, Renderer
from shapepose.training import load_exported, pick_device

log = logging.getLogger(__name__)

# Matplotlib's "tab10" colours, so that primitive m has the same colour in every file and figure.
PALETTE = np.array([
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
    (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
], dtype=np.float32) / 255.0


def primitive_color(m: int) -> np.ndarray:
    """RGB (3,) float in [0, 1] of primitive m; after 10 the palette repeats, darkened."""
    return PALETTE[m % len(PALETTE)] * (0.6 ** (m // len(PALETTE)))


def union_mesh(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Primitive meshes (M, V, 3) with shared faces (F, 3) as one mesh: vertices (M V, 3),
    faces (M F, 3), per-vertex colours (M V, 3) by primitive."""
    m, v = vertices.shape[:2]
    offsets = (np.arange(m) * v)[:, None, None]
    colors = np.repeat(np.stack([primitive_color(k) for k in range(m)]), v, axis=0)
    return vertices.reshape(m * v, 3), (faces[None] + offsets).reshape(-1, 3), colors


def on_white(rgba: np.ndarray) -> np.ndarray:
    """(H, W, 4) uint8 straight alpha -> (H, W, 3) uint8 over a white background."""
    alpha = rgba[..., 3:4].astype(np.float32) / 255.0
    return np.rint(rgba[..., :3] * alpha + 255.0 * (1 - alpha)).astype(np.uint8)


def frame_stem(ref: FrameRef) -> str:
    return f"{ref.files.sequence}_frame_{ref.frame:06d}"


def export_neural_parts(*, model_path: str, sequences: list[str], surface: list[str],
                        volume: list[str], renders: list[str], primitives_dir: str,
                        views_dir: str, device: str, split: dict, n_frames: int,
                        subdivisions: int, image_size: int, render_size: int,
                        camera: dict) -> list[str]:
    """For `n_frames` evenly spaced test frames: `{stem}_part_{m:02d}.ply` per primitive in
    `primitives_dir`, and `{stem}.png` in `views_dir` (the input render beside the union of the
    primitives from the same camera, primitive m in `primitive_color(m)`). Returns the stems."""
    device = pick_device(device)
    model = load_model(load_exported(model_path, map_location=device), device)
    frames = split_frames(sequence_files(sequences, surface, volume, renders),
                          split["test_sequences"], split["val_stride"])["test"]
    frames = evenly_spaced(frames, n_frames)
    stems = []
    with Renderer(render_size, Camera(**camera)) as renderer, \
            atomic_dir(primitives_dir) as meshes_tmp, atomic_dir(views_dir) as views_tmp:
        for ref in tqdm(frames, desc="export_neural_parts", unit="frame", file=sys.stderr):
            batch = frame_tensors(load_frame_samples(ref, image_size), device)
            with torch.no_grad():
                condition = model.conditions(batch["images"])
            vertices, faces = primitive_meshes(model, condition, subdivisions)
            stem = frame_stem(ref)
            for m, part in enumerate(vertices):
                colors = np.broadcast_to(primitive_color(m), part.shape)
                write_ply(Path(meshes_tmp) / f"{stem}_part_{m:02d}.ply", part, faces, colors=colors)
            union = renderer.render(*union_mesh(vertices, faces))
            given = np.asarray(Image.fromarray(read_rgba(ref.render, what="render"))
                               .resize((render_size, render_size)))
            side_by_side = np.concatenate([on_white(given), on_white(union)], axis=1)
            Image.fromarray(side_by_side).save(Path(views_tmp) / f"{stem}.png")
            stems.append(stem)
    log.info("exported %d primitive meshes and views of %d test frames", len(stems) * model.n_primitives,
             len(stems))
    return stems

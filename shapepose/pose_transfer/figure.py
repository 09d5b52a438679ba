"""The picture people look at: held-out pairs as identity | pose | each variant's answer | ground truth."""

from __future__ import annotations

import io
import logging

import numpy as np
from PIL import Image, ImageDraw

from shapepose.errors import InputError
from shapepose.io import atomic_file
from shapepose.pose_transfer.metrics import bbox_centred, pmd

log = logging.getLogger(__name__)


def _load(path) -> dict:
    try:
        with np.load(path) as data:
            return {key: data[key] for key in data.files}
    except (OSError, ValueError) as exc:
        raise InputError(path, f"cannot read pose-transfer predictions ({exc})") from None


def _rgb(rgba: np.ndarray) -> np.ndarray:
    alpha = rgba[..., 3:4].astype(np.float32) / 255.0
    return (rgba[..., :3] * alpha + 255.0 * (1 - alpha)).astype(np.uint8)


def pose_transfer_grid(*, predictions: list[str], variants: list[str], out: str, n_pairs: int,
                       size: int, camera: dict, distance: float) -> None:
    """Render the first `n_pairs` triples of each variant's predictions npz (same test list, so
    the same triples) into one PNG: rows are triples; columns identity, pose, one per variant
    (titled with its PMD), ground truth. Every mesh is centred on its bounding box and seen by
    `camera` looking at the origin from `distance` metres."""
    import torchvision  # noqa: F401  (before any EGL context: the renderer segfaults otherwise)

    from shapepose.render import Camera, Renderer

    if len(predictions) != len(variants):
        raise ValueError("one predictions file per variant")
    runs = [_load(p) for p in predictions]
    first = runs[0]
    for path, run in zip(predictions, runs):
        if not np.array_equal(run["names"], first["names"]):
            raise InputError(path, f"predictions are of other triples than {predictions[0]}")
    faces = first["faces"]
    rows = min(n_pairs, len(first["names"]))
    titles = ["identity", "pose", *variants, "ground truth"]
    cam = Camera(**{**camera, "target": (0.0, 0.0, 0.0), "distance": distance})
    label = 16
    canvas = Image.new("RGB", (size * len(titles), label + size * rows), "white")
    draw = ImageDraw.Draw(canvas)
    for c, title in enumerate(titles):
        draw.text((c * size + 4, 2), title, fill="black")
    with Renderer(size, cam) as renderer:
        for r in range(rows):
            meshes = [first["identity"][r], first["pose"][r], *[run["predicted"][r] for run in runs],
                      first["ground_truth"][r]]
            for c, vertices in enumerate(meshes):
                image = _rgb(renderer.render(bbox_centred(vertices), faces))
                canvas.paste(Image.fromarray(image), (c * size, label + r * size))
            for c, run in enumerate(runs):
                value = float(pmd(run["predicted"][r], run["ground_truth"][r]))
                draw.text(((2 + c) * size + 4, label + r * size + size - 14), f"PMD {value:.1e}",
                          fill="black")
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG")
    with atomic_file(out) as tmp:
        tmp.write_bytes(buffer.getvalue())
    log.info("pose-transfer grid: %d triples x %d columns -> %s", rows, len(titles), out)

"""Builders of the tiny datasets several test files need: a DPC-layout synthetic set, folders of
square RGBA cut-outs, and registrations files in DFAUST's layout.

tests/conftest.py turns the ones whose parameters no test depends on into shared fixtures
(`tiny_dpc`, `tiny_cutouts`); a test whose assertions depend on its own sizes calls the builder
with them.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
from PIL import Image

from shapepose.cars.synthetic import write_synthetic

# the procedural car's shape ranges: config.yaml's, copied so a config change leaves the tests' data
CAR_SHAPES = {"length": [3.6, 5.0], "width_ratio": [0.38, 0.44], "height": [1.3, 1.7],
              "truck_length": [5.0, 6.5], "truck_height": [2.0, 2.8], "wheel_radius": [0.28, 0.36],
              "clearance_ratio": [0.4, 0.7], "cabin_ratio": [0.4, 0.6],
              "truck_cab_ratio": [0.25, 0.35], "cabin_offset": [-0.15, 0.05]}
# cameras on a sphere of radius 2 * diagonal, between these elevations (degrees)
DIAGONAL, ELEVATION = 1.0, (-20, 40)
HALVES = {"train": 0.5, "val": 0.25, "test": 0.25}
# the shared `tiny_dpc` set: 8 models of 4 views at 64 px, a quarter of them trucks
TINY_DPC = {"seed": 3, "models": 8, "views": 4, "image_size": 64, "gt_points": 3000,
            "truck_fraction": 0.25}


def write_tiny_dpc(root: Path, *, seed: int, models: int, views: int, image_size: int,
                   gt_points: int, truck_fraction: float, lights=(1, 3), split=HALVES) -> Path:
    """A synthetic car set in DPC's layout (renders, cameras, point clouds, splits) under root."""
    write_synthetic(root, seed=seed, models=models, views=views, image_size=image_size,
                    diagonal=DIAGONAL, elevation=ELEVATION, lights=lights, gt_points=gt_points,
                    split=split, truck_fraction=truck_fraction, shape_ranges=CAR_SHAPES)
    return root


def write_cutouts(folder: Path, n: int, seed: int) -> None:
    """n square (64 px) RGBA cut-outs like the normalized ones, cut_00.png ...: a textured
    ellipse on transparent black."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:64, :64]
    for i in range(n):
        cy, cx = rng.uniform(24, 40, 2)
        ry, rx = rng.uniform(8, 14), rng.uniform(14, 24)
        inside = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
        rgb = rng.integers(40, 255, (64, 64, 3), dtype=np.uint8)
        rgba = np.dstack([np.where(inside[..., None], rgb, 0), np.where(inside, 255, 0)])
        Image.fromarray(rgba.astype(np.uint8), mode="RGBA").save(folder / f"cut_{i:02d}.png")


def write_cutout_splits(root: Path, counts: dict[str, int]) -> Path:
    """The workflow's cut-out folder (cars.cutouts): root/<split>/cut_*.png, counts[split] each."""
    for split, n in counts.items():
        (root / split).mkdir(parents=True)
        write_cutouts(root / split, n, seed=len(split))
    return root


# the smallest faces array a registrations file can hold
TRIANGLE = np.array([[0, 1, 2]], dtype=np.int32)


def write_registrations(path: Path, sequences: dict[str, np.ndarray],
                        faces: np.ndarray | None = TRIANGLE, faces_key: str = "faces") -> Path:
    """A registrations file in DFAUST's layout: faces (F, 3) and one (V, 3, T) array per
    "<subject>_<motion>" key. faces None leaves the faces out (a broken file)."""
    with h5py.File(path, "w") as fh:
        if faces is not None:
            fh[faces_key] = faces
        for key, verts in sequences.items():
            fh[key] = verts
    return path

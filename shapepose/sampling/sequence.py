"""Per-sequence drivers: every frame's mesh in a directory -> one surface or volume sample file."""

from __future__ import annotations

import logging
import sys

import h5py
import numpy as np
from tqdm import tqdm

from shapepose.errors import InputError
from shapepose.io import atomic_file
from shapepose.meshes import list_frames, load_frame, signed_volume
from shapepose.sampling.inside import INSIDE_TEST
from shapepose.sampling.store import SurfaceSampleWriter, VolumeSampleWriter
from shapepose.sampling.surface import sample_surface_points
from shapepose.sampling.volume import (STRATA, WEIGHTS_DEFINITION, cuboid_center, make_grid,
                                       normalized_fractions, sample_volume_points)
from shapepose.seeding import RNG_NOTE, derive_rng

log = logging.getLogger(__name__)


def frame_rng(seed: int, stage: str, sequence: str, frame: int) -> np.random.Generator:
    """The generator of one stage ("surface" or "volume") for one frame of one sequence.

    Independent of every other frame's and of the other stage's, so the surface and volume
    samples of a frame share no random numbers.
    """
    return derive_rng(seed, stage, sequence, frame)


def _progress(frames: list, task: str, sequence: str):
    return tqdm(frames, desc=f"{task} {sequence}", unit="frame", file=sys.stderr)


def sample_surface(
    mesh_dir: str, out: str, *, sequence: str, n_points: int, seed: int
) -> None:
    """Surface points with normals for every frame mesh in mesh_dir, written to the HDF5 `out`."""
    frames = list_frames(mesh_dir)
    attrs = {
        "sequence": sequence, "n_points": int(n_points), "seed": int(seed),
        "rng": f"{RNG_NOTE}; labels = ('surface', sequence, frame)",
        "sampler": "faces by area (multinomial counts), uniform barycentric (sqrt) in each face",
        "normals": "unit normal of the face each point lies on",
    }
    with atomic_file(out) as tmp, h5py.File(tmp, "w") as h5:
        writer = SurfaceSampleWriter(h5, len(frames), int(n_points), attrs)
        for index, (frame, path) in enumerate(_progress(frames, "sample_surface", sequence)):
            vertices, faces = load_frame(path, frame)
            rng = frame_rng(seed, "surface", sequence, frame)
            try:
                points, normals = sample_surface_points(vertices, faces, int(n_points), rng)
            except ValueError as error:
                raise InputError(path, str(error), frame=frame) from None
            writer.write(index, frame, points, normals)
        writer.close()


def sample_volume(
    mesh_dir: str,
    out: str,
    *,
    sequence: str,
    n_points: int,
    cuboid: tuple[float, float, float],
    center: str | list[float],
    cell_size: float,
    strata: dict[str, float],
    seed: int,
) -> None:
    """Labelled, weighted volume points for every frame mesh in mesh_dir, written to `out`.

    center: "bbox" (each frame's bounding-box centre) or a fixed [x, y, z].
    """
    # Bad parameters fail before any work.
    fractions = normalized_fractions(strata)
    grid = make_grid(np.zeros(3), cuboid, cell_size)
    cuboid_center(np.zeros((1, 3)), center)
    frames = list_frames(mesh_dir)
    attrs = {
        "sequence": sequence, "n_points": int(n_points), "seed": int(seed),
        "rng": f"{RNG_NOTE}; labels = ('volume', sequence, frame)",
        "cuboid": np.asarray(cuboid, dtype=np.float64),
        "center": center if isinstance(center, str) else np.asarray(center, dtype=np.float64),
        "cell_size": float(cell_size), "cells": grid.cells, "cell_dims": grid.cell_dims,
        **{f"strata_{name}": float(f) for name, f in zip(STRATA, fractions)},
        "strata": "boundary: cells a triangle's bounding box touches; interior/exterior: the other "
                  "cells, by winding number of their surface-free component",
        "inside_test": INSIDE_TEST, "weights": WEIGHTS_DEFINITION,
    }
    with atomic_file(out) as tmp, h5py.File(tmp, "w") as h5:
        writer = VolumeSampleWriter(h5, len(frames), int(n_points), attrs)
        for index, (frame, path) in enumerate(_progress(frames, "sample_volume", sequence)):
            vertices, faces = load_frame(path, frame)
            # Inside means winding number > 1/2, which needs faces pointing outward.
            if not signed_volume(vertices, faces) > 0:
                raise InputError(path, "the mesh encloses no positive volume (faces point inward?)",
                                 frame=frame)
            samples = sample_volume_points(
                vertices, faces, int(n_points), frame_rng(seed, "volume", sequence, frame),
                cuboid=cuboid, center=center, cell_size=cell_size, strata=strata,
            )
            if samples.vertices_outside > 0:
                log.warning("%s (frame %d): %.2f %% of the vertices lie outside the %s cuboid",
                            path, frame, 100 * samples.vertices_outside, list(cuboid))
            writer.write(index, frame, samples)

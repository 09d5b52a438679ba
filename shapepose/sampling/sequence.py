"""Per-sequence drivers: every frame's mesh in a directory -> one surface or volume sample file."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import sys
from pathlib import Path

import h5py
import numpy as np
from tqdm import tqdm

from shapepose.errors import InputError
from shapepose.io import atomic_file, read_ply
from shapepose.sampling.inside import INSIDE_TEST
from shapepose.sampling.store import SurfaceSampleWriter, VolumeSampleWriter
from shapepose.sampling.surface import sample_surface
from shapepose.sampling.volume import (STRATA, WEIGHTS_DEFINITION, cuboid_center, make_grid,
                                       normalized_fractions, sample_volume)

log = logging.getLogger(__name__)

FRAME_NAME = re.compile(r"frame_(\d+)\.ply")
RNG_NOTE = ("numpy default_rng(SeedSequence([seed, stable_hash(sequence), frame])), stable_hash = "
            "first 8 bytes of sha256(sequence, utf-8) as a little-endian unsigned integer")


def stable_hash(name: str) -> int:
    """A 64-bit hash of a name that, unlike Python's `hash`, is the same in every process."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "little")


def frame_rng(seed: int, sequence: str, frame: int) -> np.random.Generator:
    """The generator for one frame of one sequence: independent of every other frame's."""
    return np.random.default_rng(np.random.SeedSequence([seed, stable_hash(sequence), frame]))


def list_frames(mesh_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """(source frame index, path) of every frame_{i:06d}.ply in mesh_dir, by frame index."""
    mesh_dir = Path(mesh_dir)
    if not mesh_dir.is_dir():
        raise InputError(mesh_dir, "mesh directory does not exist")
    frames = sorted(
        (int(match.group(1)), path) for path in mesh_dir.iterdir()
        if (match := FRAME_NAME.fullmatch(path.name))
    )
    if not frames:
        raise InputError(mesh_dir, "no frame_*.ply meshes in the directory")
    return frames


def load_mesh(path: Path, frame: int) -> tuple[np.ndarray, np.ndarray]:
    """Read and check one frame's mesh: vertices (V, 3) float32, faces (F, 3) int64."""
    try:
        vertices, faces = read_ply(path)
    except InputError:
        raise
    except (OSError, ValueError) as error:
        raise InputError(path, f"cannot read the mesh ({error})", frame=frame) from None
    if len(faces) == 0:
        raise InputError(path, "the mesh has no faces", frame=frame)
    if not np.all(np.isfinite(vertices)):
        bad = int(np.flatnonzero(~np.all(np.isfinite(vertices), axis=1))[0])
        raise InputError(path, f"non-finite coordinate at vertex {bad}", frame=frame)
    if faces.min() < 0 or faces.max() >= len(vertices):
        raise InputError(path, f"face index out of range for {len(vertices)} vertices", frame=frame)
    return vertices, faces


def signed_volume(vertices: np.ndarray, faces: np.ndarray) -> float:
    """Volume enclosed by a closed mesh, positive when its faces point outward."""
    triangles = np.asarray(vertices, dtype=np.float64)[faces]
    tetrahedra = np.einsum("ij,ij->i", triangles[:, 0], np.cross(triangles[:, 1], triangles[:, 2]))
    return float(tetrahedra.sum() / 6.0)


def _progress(frames: list, task: str, sequence: str):
    return tqdm(frames, desc=f"{task} {sequence}", unit="frame", file=sys.stderr)


def sample_surface_sequence(
    mesh_dir: str, out: str, *, sequence: str, n_points: int, seed: int
) -> None:
    """Surface points with normals for every frame mesh in mesh_dir, written to the HDF5 `out`."""
    frames = list_frames(mesh_dir)
    attrs = {
        "sequence": sequence, "n_points": int(n_points), "seed": int(seed), "rng": RNG_NOTE,
        "sampler": "faces by area (multinomial counts), uniform barycentric (sqrt) in each face",
        "normals": "unit normal of the face each point lies on",
    }
    with atomic_file(out) as tmp, h5py.File(tmp, "w") as h5:
        writer = SurfaceSampleWriter(h5, len(frames), int(n_points), attrs)
        for index, (frame, path) in enumerate(_progress(frames, "sample_surface", sequence)):
            vertices, faces = load_mesh(path, frame)
            rng = frame_rng(seed, sequence, frame)
            try:
                points, normals = sample_surface(vertices, faces, int(n_points), rng)
            except ValueError as error:
                raise InputError(path, str(error), frame=frame) from None
            writer.write(index, frame, points, normals)
        writer.close()


def sample_volume_sequence(
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
        "sequence": sequence, "n_points": int(n_points), "seed": int(seed), "rng": RNG_NOTE,
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
            vertices, faces = load_mesh(path, frame)
            # Inside means winding number > 1/2, which needs faces pointing outward.
            if not signed_volume(vertices, faces) > 0:
                raise InputError(path, "the mesh encloses no positive volume (faces point inward?)",
                                 frame=frame)
            samples = sample_volume(
                vertices, faces, int(n_points), frame_rng(seed, sequence, frame),
                cuboid=cuboid, center=center, cell_size=cell_size, strata=strata,
            )
            if samples.vertices_outside > 0:
                log.warning("%s (frame %d): %.2f %% of the vertices lie outside the %s cuboid",
                            path, frame, 100 * samples.vertices_outside, list(cuboid))
            writer.write(index, frame, samples)

"""Mesh extraction: one DFAUST sequence to one binary PLY per kept frame, checked watertight."""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path

import numpy as np
from tqdm import tqdm

from shapepose.dfaust import open_registrations, read_faces, read_frames, sequence_dataset
from shapepose.errors import InputError
from shapepose.io import atomic_dir, read_ply, write_ply

log = logging.getLogger(__name__)

FRAME_PATTERN = "frame_{:06d}.ply"
_FRAME_RE = re.compile(r"frame_(\d+)\.ply")


def frame_name(index: int) -> str:
    """File name of the mesh of source frame `index` (the index in the registrations file)."""
    return FRAME_PATTERN.format(index)


def list_frames(mesh_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """(source frame index, path) of every `frame_{i:06d}.ply` of an extracted sequence, in order.

    Other files (`sequence.json`) are ignored; a missing or empty directory is an `InputError`.
    """
    mesh_dir = Path(mesh_dir)
    if not mesh_dir.is_dir():
        raise InputError(mesh_dir, "mesh directory does not exist")
    frames = sorted((int(match.group(1)), path) for path in mesh_dir.iterdir()
                    if (match := _FRAME_RE.fullmatch(path.name)))
    if not frames:
        raise InputError(mesh_dir, "no frame_*.ply meshes in the directory")
    return frames


def load_frame(path: str | os.PathLike, frame: int) -> tuple[np.ndarray, np.ndarray]:
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


def watertight_problem(faces: np.ndarray) -> str | None:
    """Why `faces` (F, 3) do not close a surface, or None when they do.

    Closed and consistently oriented means every directed edge occurs exactly once and its reverse
    occurs too, so every undirected edge borders exactly two faces that agree on orientation.
    DFAUST frames share one face list, so this topological check holds for every frame at once.
    """
    if len(faces) == 0:
        return "no faces"
    if np.any(faces[:, 0] == faces[:, 1]) | np.any(faces[:, 1] == faces[:, 2]) | np.any(
            faces[:, 0] == faces[:, 2]):
        return "degenerate faces repeat a vertex"
    directed = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    n = int(faces.max()) + 1
    codes = directed[:, 0] * n + directed[:, 1]
    uniq, counts = np.unique(codes, return_counts=True)
    if np.any(counts > 1):
        return f"{int(np.sum(counts > 1))} directed edges are used more than once (non-manifold or flipped faces)"
    reverse = directed[:, 1] * n + directed[:, 0]
    open_edges = int(np.sum(~np.isin(reverse, uniq)))
    if open_edges:
        return f"{open_edges} boundary edges (holes)"
    return None


def close_holes(vertices: np.ndarray, faces: np.ndarray, max_hole_edges: int = 100) -> np.ndarray:
    """Faces with the holes filled by MeshLab's hole closing; the vertices are not changed.

    Filling adds faces over existing boundary vertices only, so the repaired face list can be
    shared by every frame of a sequence.
    """
    import pymeshlab  # imported here: it needs libGL, and only this optional repair uses it

    ms = pymeshlab.MeshSet()
    ms.add_mesh(pymeshlab.Mesh(vertex_matrix=vertices.astype(np.float64), face_matrix=faces.astype(np.int32)))
    ms.meshing_close_holes(maxholesize=max_hole_edges, selfintersection=False)
    repaired = ms.current_mesh()
    if repaired.vertex_number() != len(vertices):
        raise RuntimeError("hole closing changed the vertex count; cannot share faces across frames")
    return repaired.face_matrix().astype(np.int64)


def select_frames(n_frames: int, drop_first: int, stride: int, max_frames: int | None = None) -> np.ndarray:
    """Source frame indices kept: drop the leading frames, then every `stride`-th, at most `max_frames`."""
    kept = np.arange(drop_first, n_frames, stride, dtype=np.int64)
    return kept[:max_frames] if max_frames else kept


def extract_meshes(registrations: str | os.PathLike, key: str, out_dir: str | os.PathLike, *,
                   frame_stride: int = 1, drop_first: int = 0, max_frames: int | None = None,
                   repair_holes: bool = False, block_frames: int = 64,
                   source: str | None = None) -> list[int]:
    """Write `frame_{i:06d}.ply` for the kept frames of sequence `key`; returns their indices.

    Everything is checked before the directory appears: a missing `faces`, a wrong shape, NaN
    vertices or an open surface raise `InputError` naming file, key and frame, and `out_dir` is
    only renamed into place once every frame is written. `source` is the workflow's change
    signal for this sequence's data (`shapepose.provenance`): it is only logged.
    """
    if source is not None:
        log.info("%s %s: source %s", registrations, key, source)
    with open_registrations(registrations) as fh:
        path = fh.filename
        faces = read_faces(fh)
        ds = sequence_dataset(fh, key, n_vertices_min=int(faces.max()) + 1 if len(faces) else 0)
        frames = select_frames(ds.shape[2], drop_first, frame_stride, max_frames)
        if len(frames) == 0:
            raise InputError(path, f"no frame left after dropping {drop_first} of {ds.shape[2]} "
                                   f"with stride {frame_stride}", key=key)
        problem = watertight_problem(faces)
        if problem is not None:
            if not repair_holes:
                raise InputError(path, f"mesh is not watertight: {problem} (faces are shared by all "
                                       "frames; set meshes.repair_holes to fill holes)",
                                 key=key, frame=int(frames[0]))
            first = read_frames(ds, frames[:1])[0]
            faces = close_holes(first, faces)
            still = watertight_problem(faces)
            if still is not None:
                raise InputError(path, f"mesh is not watertight and hole filling failed: {still}",
                                 key=key, frame=int(frames[0]))
            log.warning("%s %s: filled holes, faces now %d", path, key, len(faces))
        log.info("%s %s: %d of %d frames, %d vertices, %d faces", path, key, len(frames),
                 ds.shape[2], ds.shape[0], len(faces))
        with atomic_dir(out_dir) as tmp:
            with tqdm(total=len(frames), desc=f"extract {key}", unit="frame") as bar:
                for start in range(0, len(frames), block_frames):
                    chunk = frames[start:start + block_frames]
                    for index, vertices in zip(chunk, read_frames(ds, chunk)):
                        write_ply(tmp / frame_name(int(index)), vertices, faces)
                        bar.update()
            meta = {"source": str(path), "key": key, "frames": [int(i) for i in frames],
                    "n_vertices": int(ds.shape[0]), "n_faces": int(len(faces)),
                    "repaired": problem is not None}
            (tmp / "sequence.json").write_text(json.dumps(meta, indent=1) + "\n")
    return [int(i) for i in frames]

"""Binary little-endian PLY for triangle meshes: float32 vertices stored bit-exactly.

MeshLab, Blender and trimesh open these files; we read and write them with numpy alone so that a
round trip returns exactly the float32 values that were written. Vertices may carry an 8-bit RGB
colour (red, green, blue uchar properties after x, y, z), which viewers show and `read_ply` skips.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from shapepose.errors import InputError

_FACE_DTYPE = np.dtype([("n", "u1"), ("idx", "<i4", (3,))])
_COLOURED_VERTEX_DTYPE = np.dtype([("xyz", "<f4", (3,)), ("rgb", "u1", (3,))])
_COLOUR_PROPERTIES = ["property uchar red", "property uchar green", "property uchar blue"]


def write_ply(path: str | os.PathLike, vertices: np.ndarray, faces: np.ndarray,
              colors: np.ndarray | None = None) -> None:
    """Write `vertices` (V, 3) float32 and `faces` (F, 3) int to a binary PLY at `path`.

    `colors`: optional per-vertex RGB, (V, 3) uint8, or float in [0, 1] (rounded to 8 bits).
    """
    vertices = np.ascontiguousarray(vertices, dtype="<f4")
    faces = np.asarray(faces)
    if vertices.ndim != 2 or vertices.shape[1] != 3:
        raise ValueError(f"vertices must be (V, 3), got {vertices.shape}")
    if faces.ndim != 2 or faces.shape[1] != 3:
        raise ValueError(f"faces must be (F, 3), got {faces.shape}")
    colour_header = ""
    if colors is not None:
        colors = np.asarray(colors)
        if colors.shape != vertices.shape:
            raise ValueError(f"colors must be (V, 3) = {vertices.shape}, got {colors.shape}")
        if colors.dtype != np.uint8:
            colors = np.rint(np.clip(colors, 0.0, 1.0) * 255).astype(np.uint8)
        coloured = np.empty(len(vertices), dtype=_COLOURED_VERTEX_DTYPE)
        coloured["xyz"], coloured["rgb"] = vertices, colors
        colour_header = "".join(line + "\n" for line in _COLOUR_PROPERTIES)
    header = (
        "ply\nformat binary_little_endian 1.0\n"
        f"element vertex {len(vertices)}\n"
        "property float x\nproperty float y\nproperty float z\n"
        f"{colour_header}"
        f"element face {len(faces)}\n"
        "property list uchar int vertex_indices\nend_header\n"
    ).encode("ascii")
    packed = np.empty(len(faces), dtype=_FACE_DTYPE)
    packed["n"] = 3
    packed["idx"] = faces
    with open(path, "wb") as fh:
        fh.write(header)
        fh.write(vertices.tobytes() if colors is None else coloured.tobytes())
        fh.write(packed.tobytes())


def read_ply(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read a PLY written by `write_ply`: returns vertices (V, 3) float32 and faces (F, 3) int64.

    Vertex colours, when present, are skipped.
    """
    path = Path(path)
    data = path.read_bytes()
    end = data.find(b"end_header\n")
    if not data.startswith(b"ply\n") or end < 0:
        raise InputError(path, "not a PLY file (no 'ply' magic or no end_header)")
    header = data[:end].decode("ascii", errors="replace").splitlines()
    if "format binary_little_endian 1.0" not in header:
        raise InputError(path, "only binary little-endian PLY written by shapepose is supported")
    counts = {}
    for line in header:
        parts = line.split()
        if parts[:1] == ["element"]:
            counts[parts[1]] = int(parts[2])
    n_v, n_f = counts.get("vertex", 0), counts.get("face", 0)
    body = memoryview(data)[end + len(b"end_header\n"):]
    coloured = all(line in header for line in _COLOUR_PROPERTIES)
    v_bytes = n_v * (_COLOURED_VERTEX_DTYPE.itemsize if coloured else 12)
    if len(body) != v_bytes + n_f * _FACE_DTYPE.itemsize:
        raise InputError(path, f"truncated or malformed body for {n_v} vertices and {n_f} faces")
    if coloured:
        vertices = np.frombuffer(body[:v_bytes], dtype=_COLOURED_VERTEX_DTYPE)["xyz"].copy()
    else:
        vertices = np.frombuffer(body[:v_bytes], dtype="<f4").reshape(n_v, 3).copy()
    packed = np.frombuffer(body[v_bytes:], dtype=_FACE_DTYPE)
    if n_f and not np.all(packed["n"] == 3):
        raise InputError(path, "faces must all be triangles")
    return vertices, packed["idx"].astype(np.int64)

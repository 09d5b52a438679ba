"""Compressed per-sequence HDF5 files of surface and volume samples, and their readers.

One file per sequence, frames stacked on the first axis, one frame per chunk, gzip + shuffle.
Points are uint16 codes, point = origin[t] + code * scale[t] per axis; rows are sorted in Morton
(z-) order of the codes so that gzip finds long runs in the high bytes. Consumers must therefore
draw random rows, never take a prefix. Datasets are created without timestamps, so the same
samples give the same bytes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import h5py
import numpy as np

import shapepose
from shapepose.errors import InputError

if TYPE_CHECKING:  # readers must not need the samplers' ray-tracing dependencies
    from shapepose.sampling.volume import VolumeSamples

CODE_MAX = 65535
GZIP_LEVEL = 6
NORMAL_DTYPE = np.int8
SURFACE_KIND = "surface_samples"
VOLUME_KIND = "volume_samples"
ROW_ORDER_NOTE = ("rows are sorted in Morton order of the point codes: draw random rows, "
                  "never a prefix")
POINT_QUANTIZATION = "uint16 codes per axis: point = origin[frame] + code * scale[frame] (metres)"


def quantize_to_box(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Quantize points (N, 3) to uint16 over their bounding box.

    Returns codes (N, 3) uint16, origin (3,) float64 and scale (3,) float64 (metres per code);
    decoding is off by at most half a scale step per axis.
    """
    points = np.asarray(points, dtype=np.float64)
    origin = points.min(axis=0)
    extent = points.max(axis=0) - origin
    # A flat axis decodes every code 0 to the origin exactly; any positive scale will do.
    scale = np.where(extent > 0, extent / CODE_MAX, 1.0)
    codes = np.clip(np.rint((points - origin) / scale), 0, CODE_MAX).astype(np.uint16)
    return codes, origin, scale


def decode_points(codes: np.ndarray, origin: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Codes (..., N, 3) uint16 with origin and scale (..., 3) -> points (..., N, 3) float32."""
    origin = np.asarray(origin)[..., None, :]
    scale = np.asarray(scale)[..., None, :]
    return (origin + codes * scale).astype(np.float32)


def _fold(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project unit vectors onto the octahedron |x|+|y|+|z| = 1 and unfold it onto [-1, 1]^2."""
    norm = np.abs(x) + np.abs(y) + np.abs(z)
    u, v = x / norm, y / norm
    lower = z < 0
    sign_u = np.where(u >= 0, 1.0, -1.0)
    sign_v = np.where(v >= 0, 1.0, -1.0)
    fu = np.where(lower, (1.0 - np.abs(v)) * sign_u, u)
    fv = np.where(lower, (1.0 - np.abs(u)) * sign_v, v)
    return fu, fv


def _unfold(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Inverse of `_fold`: [-1, 1]^2 coordinates (...,) -> unit vectors (..., 3) float64."""
    z = 1.0 - np.abs(u) - np.abs(v)
    shift = np.maximum(-z, 0.0)  # the lower half was folded over the square's corners
    x = u - np.where(u >= 0, shift, -shift)
    y = v - np.where(v >= 0, shift, -shift)
    vectors = np.stack([x, y, z], axis=-1)
    return vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)


def octahedral_encode(normals: np.ndarray, dtype=NORMAL_DTYPE) -> np.ndarray:
    """Unit normals (N, 3) -> octahedral codes (N, 2) of the signed integer dtype.

    Of the four codes around the exact position we keep the one whose decoded normal is closest in
    angle, which shrinks the worst error compared with plain rounding.
    """
    normals = np.asarray(normals, dtype=np.float64)
    levels = np.iinfo(dtype).max
    fu, fv = _fold(normals[:, 0], normals[:, 1], normals[:, 2])
    base_u, base_v = np.floor(fu * levels), np.floor(fv * levels)
    best = np.stack([base_u, base_v], axis=1)
    best_dot = np.full(len(normals), -np.inf)
    for du in (0.0, 1.0):
        for dv in (0.0, 1.0):
            cu = np.clip(base_u + du, -levels, levels)
            cv = np.clip(base_v + dv, -levels, levels)
            dot = np.einsum("ij,ij->i", _unfold(cu / levels, cv / levels), normals)
            better = dot > best_dot
            best[better] = np.stack([cu[better], cv[better]], axis=1)
            best_dot = np.maximum(dot, best_dot)
    return best.astype(dtype)


def octahedral_decode(codes: np.ndarray) -> np.ndarray:
    """Octahedral codes (..., 2) signed int -> unit normals (..., 3) float32."""
    levels = np.iinfo(codes.dtype).max
    uv = codes.astype(np.float64) / levels
    return _unfold(uv[..., 0], uv[..., 1]).astype(np.float32)


def angular_error_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angles (N,) float64 in degrees between unit vectors a and b (N, 3)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    # atan2 of |cross| and dot stays accurate for tiny angles, unlike arccos.
    sine = np.linalg.norm(np.cross(a, b), axis=1)
    return np.degrees(np.arctan2(sine, np.einsum("ij,ij->i", a, b)))


def _spread_bits(v: np.ndarray) -> np.ndarray:
    """Move bit i of each 16-bit value to bit 3 i of a uint64."""
    v = v.astype(np.uint64)
    masks = ((16, 0x0000FF0000FF), (8, 0x00F00F00F00F), (4, 0x0C30C30C30C3), (2, 0x249249249249))
    for shift, mask in masks:
        v = (v | (v << np.uint64(shift))) & np.uint64(mask)
    return v


def morton_order(codes: np.ndarray) -> np.ndarray:
    """Row permutation (N,) int64 that sorts codes (N, 3) uint16 in Morton (z-) order."""
    key = _spread_bits(codes[:, 0]) | (_spread_bits(codes[:, 1]) << np.uint64(1)) | (
        _spread_bits(codes[:, 2]) << np.uint64(2))
    return np.argsort(key, kind="stable")


def _create(h5: h5py.File, name: str, shape: tuple[int, ...], dtype) -> h5py.Dataset:
    """A gzip + shuffle dataset chunked one frame per chunk, without timestamps."""
    return h5.create_dataset(
        name, shape=shape, dtype=dtype, chunks=(1,) + shape[1:], compression="gzip",
        compression_opts=GZIP_LEVEL, shuffle=True, track_times=False,
    )


def _create_per_frame(h5: h5py.File, n_frames: int) -> None:
    """The small per-frame datasets both kinds share: frames, origin, scale."""
    h5.create_dataset("frames", shape=(n_frames,), dtype=np.int32, track_times=False)
    h5.create_dataset("origin", shape=(n_frames, 3), dtype=np.float64, track_times=False)
    h5.create_dataset("scale", shape=(n_frames, 3), dtype=np.float64, track_times=False)


def _write_attrs(h5: h5py.File, attrs: dict) -> None:
    for key, value in attrs.items():
        h5.attrs[key] = np.asarray(value) if isinstance(value, (list, tuple)) else value


class SurfaceSampleWriter:
    """Fills an open HDF5 file with the surface samples of one sequence, frame by frame.

    Datasets: points (T, N, 3) uint16, normals (T, N, 2) octahedral int8, origin and scale (T, 3)
    float64, frames (T,) int32 source frame indices. `attrs` (the sampling parameters) go on the
    root with the encoding notes; `close()` records the largest normal angular error written.
    """

    def __init__(self, h5: h5py.File, n_frames: int, n_points: int, attrs: dict):
        self.h5 = h5
        _create_per_frame(h5, n_frames)
        _create(h5, "points", (n_frames, n_points, 3), np.uint16)
        _create(h5, "normals", (n_frames, n_points, 2), NORMAL_DTYPE)
        _write_attrs(h5, {
            "kind": SURFACE_KIND, **attrs,
            "point_quantization": POINT_QUANTIZATION + ", over the frame's sample bounding box",
            "normal_encoding": f"octahedral, {np.dtype(NORMAL_DTYPE).name} per coordinate, "
                               "closest of the 4 codes around each normal",
            "row_order": "morton", "row_order_note": ROW_ORDER_NOTE,
            "shapepose_version": shapepose.__version__,
        })
        self.max_error_deg = 0.0

    def write(self, index: int, frame: int, points: np.ndarray, normals: np.ndarray) -> None:
        """Store frame number `index` (source frame `frame`): points, unit normals (N, 3)."""
        codes, origin, scale = quantize_to_box(points)
        order = morton_order(codes)
        encoded = octahedral_encode(normals[order])
        error = angular_error_deg(octahedral_decode(encoded), normals[order])
        self.max_error_deg = max(self.max_error_deg, float(error.max(initial=0.0)))
        self.h5["points"][index] = codes[order]
        self.h5["normals"][index] = encoded
        self.h5["origin"][index] = origin
        self.h5["scale"][index] = scale
        self.h5["frames"][index] = frame

    def close(self) -> None:
        """Record the largest angle between a stored normal and the one it encodes."""
        self.h5.attrs["normal_max_angular_error_deg"] = self.max_error_deg


class VolumeSampleWriter:
    """Fills an open HDF5 file with the volume samples of one sequence, frame by frame.

    Datasets: points (T, N, 3) uint16 lattice codes, inside (T, ceil(N / 8)) uint8 bit-packed
    (np.packbits, big bit order), weights (T, N) float32, origin and scale (T, 3) float64,
    frames (T,) int32, cells_per_stratum and points_per_stratum (T, 3) int64.
    """

    def __init__(self, h5: h5py.File, n_frames: int, n_points: int, attrs: dict):
        self.h5 = h5
        self.n_points = n_points
        _create_per_frame(h5, n_frames)
        _create(h5, "points", (n_frames, n_points, 3), np.uint16)
        _create(h5, "inside", (n_frames, (n_points + 7) // 8), np.uint8)
        _create(h5, "weights", (n_frames, n_points), np.float32)
        for name in ("cells_per_stratum", "points_per_stratum"):
            h5.create_dataset(name, shape=(n_frames, 3), dtype=np.int64, track_times=False)
        _write_attrs(h5, {
            "kind": VOLUME_KIND, **attrs,
            "point_quantization": POINT_QUANTIZATION + ", a lattice over the cuboid; points were "
            "drawn on it, so labels and weights are exact for the decoded points",
            "inside_encoding": "np.packbits, bitorder big, count = n_points",
            "row_order": "morton", "row_order_note": ROW_ORDER_NOTE,
            "shapepose_version": shapepose.__version__,
        })

    def write(self, index: int, frame: int, samples: VolumeSamples) -> None:
        """Store frame number `index` (source frame `frame`)."""
        if len(samples.codes) != self.n_points:
            raise ValueError(f"expected {self.n_points} points, got {len(samples.codes)}")
        order = morton_order(samples.codes)
        self.h5["points"][index] = samples.codes[order]
        self.h5["inside"][index] = np.packbits(samples.inside[order])
        self.h5["weights"][index] = samples.weights[order].astype(np.float32)
        self.h5["origin"][index] = samples.origin
        self.h5["scale"][index] = samples.scale
        self.h5["frames"][index] = frame
        self.h5["cells_per_stratum"][index] = samples.cells_per_stratum
        self.h5["points_per_stratum"][index] = samples.points_per_stratum


def _open_samples(path: str | os.PathLike, kind: str) -> h5py.File:
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no such sample file")
    try:
        h5 = h5py.File(path, "r")
    except OSError as error:
        raise InputError(path, f"not a readable HDF5 file ({error})") from None
    found = h5.attrs.get("kind")
    if found != kind:
        h5.close()
        raise InputError(path, f"expected a {kind} file, found kind {found!r}")
    return h5


def _frame_rows(h5: h5py.File, path, frame: int | None):
    """Index into the frame axis: all frames, or the row holding source frame `frame`."""
    if frame is None:
        return slice(None)
    rows = np.flatnonzero(h5["frames"][()] == frame)
    if rows.size == 0:
        raise InputError(path, "no such frame in the file", key="frames", frame=frame)
    return int(rows[0])


def _read(path, kind: str, frame: int | None, decode) -> dict:
    h5 = _open_samples(path, kind)
    try:
        with h5:
            rows = _frame_rows(h5, path, frame)
            out = decode(h5, rows)
            out["frames"] = np.atleast_1d(h5["frames"][rows]).astype(np.int32)
            out["attrs"] = {key: value for key, value in h5.attrs.items()}
            return out
    except InputError:
        raise
    except (KeyError, OSError, ValueError) as error:
        raise InputError(path, f"corrupt or incomplete {kind} file ({error})") from None


def read_surface_samples(path: str | os.PathLike, frame: int | None = None) -> dict:
    """Read a surface-sample file: all frames, or the one with source frame index `frame`.

    Returns points (T, N, 3) float32 (or (N, 3) for one frame), normals likewise as unit float32,
    frames (T,) int32 source frame indices, attrs (dict). Rows are in Morton order: draw random
    rows, never a prefix. A missing or corrupt file raises InputError naming it.
    """
    def decode(h5, rows):
        return {
            "points": decode_points(h5["points"][rows], h5["origin"][rows], h5["scale"][rows]),
            "normals": octahedral_decode(h5["normals"][rows]),
        }
    return _read(path, SURFACE_KIND, frame, decode)


def read_volume_samples(path: str | os.PathLike, frame: int | None = None) -> dict:
    """Read a volume-sample file: all frames, or the one with source frame index `frame`.

    Returns points (T, N, 3) float32 (or (N, 3) for one frame), inside bool and weights float32
    (T, N) (or (N,)), frames (T,) int32, attrs (dict). Rows are in Morton order: draw random rows,
    never a prefix; weight them to keep statistics unbiased. A missing or corrupt file raises
    InputError naming it.
    """
    def decode(h5, rows):
        n_points = h5["weights"].shape[1]
        packed = h5["inside"][rows]
        return {
            "points": decode_points(h5["points"][rows], h5["origin"][rows], h5["scale"][rows]),
            "inside": np.unpackbits(packed, axis=-1, count=n_points).astype(bool),
            "weights": h5["weights"][rows],
        }
    return _read(path, VOLUME_KIND, frame, decode)

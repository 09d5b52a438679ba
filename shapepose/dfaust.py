"""Reading DFAUST registration files (the real ones and the demo ones), with validation.

The layout is the one DFAUST ships: `registrations_{m,f}.hdf5` holds a `faces` dataset (F, 3) and
one dataset per `{subject}_{sequence}` of shape (V, 3, T) float32 (V = 6890 for SMPL topology).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Mapping

import h5py
import numpy as np

from shapepose.errors import InputError

FACES_KEY = "faces"


def open_registrations(path: str | os.PathLike) -> h5py.File:
    """Open a registrations file read-only, or raise `InputError` saying why it cannot be read."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, "file does not exist")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise InputError(path, f"cannot be read as HDF5 ({exc})") from None


def list_sequences(path: str | os.PathLike) -> list[str]:
    """The `{subject}_{sequence}` keys of a registrations file, sorted."""
    with open_registrations(path) as fh:
        return sorted(k for k in fh.keys() if k != FACES_KEY)


def sequences_by_sex(registrations: Mapping[str, str | os.PathLike]) -> dict[str, str]:
    """{`{subject}_{sequence}` key: sex} of every sequence in DFAUST's registrations files.

    registrations: sex -> file, e.g. {"m": "registrations_m.hdf5", "f": "registrations_f.hdf5"}.
    This is the one HDF5 read the workflow makes to plan its DAG (workflow/rules/common.smk: which
    file holds each configured subject, and which subject/sequence pairs exist). It opens each file
    once and reads key names only, never vertex data, so a multi-GB file costs milliseconds; the
    per-sequence digests behind a downloaded sequence's `source` parameter are read per job and
    cached (`shapepose.provenance`). A missing or unreadable file is an `InputError` naming it.
    """
    return {key: sex for sex, path in registrations.items() for key in list_sequences(path)}


def read_faces(fh: h5py.File) -> np.ndarray:
    """The shared faces (F, 3) int64 of an open registrations file, checked for shape and type."""
    path = fh.filename
    if FACES_KEY not in fh:
        raise InputError(path, "no 'faces' dataset: not a DFAUST registrations file", key=FACES_KEY)
    ds = fh[FACES_KEY]
    if not isinstance(ds, h5py.Dataset) or ds.ndim != 2 or ds.shape[1] != 3:
        raise InputError(path, f"'faces' must have shape (F, 3), got {getattr(ds, 'shape', None)}",
                         key=FACES_KEY)
    if not np.issubdtype(ds.dtype, np.integer):
        raise InputError(path, f"'faces' must be integer, got {ds.dtype}", key=FACES_KEY)
    faces = ds[()].astype(np.int64)
    if faces.size and faces.min() < 0:
        raise InputError(path, "'faces' holds negative vertex indices", key=FACES_KEY)
    return faces


def sequence_dataset(fh: h5py.File, key: str, n_vertices_min: int) -> h5py.Dataset:
    """The (V, 3, T) dataset for `key`, checked for presence, shape and dtype."""
    path = fh.filename
    if key not in fh:
        available = ", ".join(sorted(k for k in fh.keys() if k != FACES_KEY)[:20])
        raise InputError(path, f"no such sequence (available: {available})", key=key)
    ds = fh[key]
    if not isinstance(ds, h5py.Dataset):
        raise InputError(path, "is a group, expected a (V, 3, T) dataset", key=key)
    if ds.ndim != 3 or ds.shape[1] != 3:
        raise InputError(path, f"wrong shape {ds.shape}: expected (V, 3, T)", key=key)
    if ds.shape[0] < n_vertices_min:
        raise InputError(path, f"wrong shape {ds.shape}: 'faces' index up to vertex "
                               f"{n_vertices_min - 1}, so V must be at least {n_vertices_min}", key=key)
    if not np.issubdtype(ds.dtype, np.floating):
        raise InputError(path, f"vertices must be floating point, got {ds.dtype}", key=key)
    if ds.shape[2] == 0:
        raise InputError(path, "sequence has no frames", key=key)
    return ds


def read_frames(ds: h5py.Dataset, frames: np.ndarray) -> np.ndarray:
    """Vertices of the given frames as (len(frames), V, 3) float32, checked to be finite."""
    block = np.asarray(ds[:, :, np.asarray(frames)], dtype=np.float32)  # (V, 3, k)
    block = np.ascontiguousarray(np.moveaxis(block, 2, 0))
    finite = np.isfinite(block).all(axis=(1, 2))
    if not finite.all():
        bad = int(np.asarray(frames)[np.argmin(finite)])
        raise InputError(ds.file.filename, "vertices contain NaN or inf", key=ds.name.lstrip("/"),
                         frame=bad)
    return block


def dataset_digest(path: str | os.PathLike, key: str) -> str:
    """sha256 of one sequence's shape, dtype and raw values: what 'this sequence changed' means."""
    with open_registrations(path) as fh:
        if key not in fh:
            raise InputError(path, "no such sequence", key=key)
        ds = fh[key]
        h = hashlib.sha256(f"{ds.shape}|{ds.dtype.str}|".encode())
        step = max(1, (64 << 20) // max(1, ds.shape[0] * ds.shape[1] * ds.dtype.itemsize))
        for t0 in range(0, ds.shape[2], step):
            h.update(np.ascontiguousarray(ds[:, :, t0:t0 + step]).tobytes())
    return h.hexdigest()

"""MATLAB (.mat, v5) files written byte-for-byte reproducibly, as both demo layouts need."""

from __future__ import annotations

import io
from pathlib import Path

import scipy.io

# scipy stamps the 116-byte text header with the creation time; a fixed text keeps the same
# config producing the same bytes.
_HEADER = b"MATLAB 5.0 MAT-file, written by shapepose".ljust(116, b" ")


def save_mat(path: str | Path, variables: dict) -> None:
    """scipy.io.savemat(variables) to `path` with a fixed header (not atomic: callers wrap it)."""
    buffer = io.BytesIO()
    scipy.io.savemat(buffer, variables)
    data = bytearray(buffer.getvalue())
    data[:116] = _HEADER
    Path(path).write_bytes(bytes(data))

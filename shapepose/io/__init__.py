"""File formats and safe writing."""

from shapepose.io.atomic import atomic_dir, atomic_file
from shapepose.io.npz import write_npz
from shapepose.io.ply import read_ply, write_ply

__all__ = ["atomic_dir", "atomic_file", "read_ply", "write_npz", "write_ply"]

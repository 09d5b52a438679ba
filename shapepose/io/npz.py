"""NumPy archives that are the same bytes for the same arrays.

`np.savez_compressed` stamps every member with the current time, so two runs of one config would
write different files. `write_npz` writes the same archive (np.load reads it as any .npz) with
every member dated 1980-01-01, atomically, and refuses object arrays (no pickles in outputs).
"""

from __future__ import annotations

import os
import zipfile

import numpy as np

from shapepose.io.atomic import atomic_file


def write_npz(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    """Write `arrays` to the compressed archive `path`, member `<name>.npy` per keyword."""
    with atomic_file(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, array in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)

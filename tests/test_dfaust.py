"""The registrations files' key listing the workflow reads while it plans the DAG."""

import numpy as np
import pytest

from shapepose.dfaust import sequences_by_sex
from shapepose.errors import InputError

from helpers.data import write_registrations


def _registrations(path, keys):
    return write_registrations(path, {key: np.zeros((3, 3, 2), dtype=np.float32) for key in keys})


def test_sequences_by_sex_names_each_key_once_with_its_file(tmp_path):
    m = _registrations(tmp_path / "registrations_m.hdf5", ["50002_knees", "50007_punching"])
    f = _registrations(tmp_path / "registrations_f.hdf5", ["50004_knees"])
    assert sequences_by_sex({"m": m, "f": f}) == {
        "50002_knees": "m", "50007_punching": "m", "50004_knees": "f"}


def test_sequences_by_sex_names_a_missing_or_unreadable_file(tmp_path):
    m = _registrations(tmp_path / "registrations_m.hdf5", ["50002_knees"])
    with pytest.raises(InputError, match="registrations_f.hdf5: file does not exist"):
        sequences_by_sex({"m": m, "f": tmp_path / "registrations_f.hdf5"})
    (tmp_path / "broken.hdf5").write_bytes(b"not hdf5")
    with pytest.raises(InputError, match="broken.hdf5: cannot be read as HDF5"):
        sequences_by_sex({"m": m, "f": tmp_path / "broken.hdf5"})

"""write_npz: the same arrays give the same bytes, whenever written, and np.load reads them."""

import time

import numpy as np
import pytest

from shapepose.io import write_npz


def test_predictions_archive_is_the_same_bytes_every_time_and_loads_with_numpy(tmp_path):
    arrays = {"predicted": np.arange(12, dtype=np.float32).reshape(2, 2, 3), "names": np.array([["a", "b", "c"]])}
    write_npz(tmp_path / "first.npz", **arrays)
    time.sleep(2.1)  # zip members carry a 2-second clock: a dated member would change here
    write_npz(tmp_path / "second.npz", **arrays)
    assert (tmp_path / "first.npz").read_bytes() == (tmp_path / "second.npz").read_bytes()
    with np.load(tmp_path / "first.npz") as loaded:
        np.testing.assert_array_equal(loaded["predicted"], arrays["predicted"])
        assert loaded["names"].tolist() == [["a", "b", "c"]]


def test_object_arrays_are_refused_and_leave_no_file(tmp_path):
    with pytest.raises(ValueError):
        write_npz(tmp_path / "bad.npz", rows=np.array([{"a": 1}], dtype=object))
    assert not (tmp_path / "bad.npz").exists()

"""Per-sequence digests: what makes Snakemake rerun one sequence and not the others."""

import hashlib
import os

import h5py
import numpy as np

from shapepose.provenance import DigestCache, source_digest

from helpers.data import write_registrations


def _registrations(path, n=3):
    rng = np.random.default_rng(0)
    return write_registrations(path, {key: rng.normal(size=(4, 3, n)).astype(np.float32)
                                      for key in ("1_a", "1_b")})


def test_content_digest_is_sha256_of_shape_dtype_and_values(tmp_path):
    path = _registrations(tmp_path / "r.hdf5")
    with h5py.File(path, "r") as fh:
        values = fh["1_a"][()]
    expected = hashlib.sha256(f"{values.shape}|{values.dtype.str}|".encode() + values.tobytes())
    cache = DigestCache(tmp_path / "cache.json")
    assert source_digest(path, "1_a", cache) == "content:" + expected.hexdigest()


def test_downloaded_data_digest_follows_content_not_mtime(tmp_path):
    path = _registrations(tmp_path / "r.hdf5")
    cache = DigestCache(tmp_path / "cache.json")
    a, b = source_digest(path, "1_a", cache), source_digest(path, "1_b", cache)
    os.utime(path, ns=(1, 1))  # touched, not changed
    assert source_digest(path, "1_a", DigestCache(tmp_path / "none.json")) == a
    with h5py.File(path, "r+") as fh:
        fh["1_a"][0, 0, 0] += 1
    fresh = DigestCache(tmp_path / "cache.json")
    assert source_digest(path, "1_a", fresh) != a
    assert source_digest(path, "1_b", fresh) == b


def test_cache_is_keyed_by_size_and_mtime(tmp_path):
    path = _registrations(tmp_path / "r.hdf5")
    cache = DigestCache(tmp_path / "cache.json")
    first = source_digest(path, "1_a", cache)
    cache.save()
    reloaded = DigestCache(tmp_path / "cache.json")
    assert len(reloaded.entries) == 1 and not reloaded.dirty
    assert source_digest(path, "1_a", reloaded) == first and not reloaded.dirty
    os.utime(path, ns=(5, 5))
    source_digest(path, "1_a", reloaded)
    assert reloaded.dirty and len(reloaded.entries) == 2

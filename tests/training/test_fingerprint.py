"""The data fingerprint of a training run: content and relative names, never paths or times."""

import hashlib
import os
import shutil

from shapepose.training.fingerprint import data_fingerprint


def write_tree(root):
    (root / "a").mkdir(parents=True)
    (root / "a" / "x.png").write_bytes(b"\x89PNG one")
    (root / "b.h5").write_bytes(b"two" * 1000)
    return [root / "a", root / "b.h5"]


def test_same_bytes_elsewhere_and_later_give_the_same_fingerprint(tmp_path):
    first = data_fingerprint(write_tree(tmp_path / "run1"), root=tmp_path / "run1")
    moved = tmp_path / "run2"
    shutil.copytree(tmp_path / "run1", moved)
    os.utime(moved / "b.h5", (1, 1))
    assert data_fingerprint([moved / "a", moved / "b.h5"], root=moved) == first


def test_fingerprint_is_sha256_of_names_sizes_and_bytes_in_order(tmp_path):
    paths = write_tree(tmp_path)
    expected = hashlib.sha256()
    for name, data in (("a/x.png", b"\x89PNG one"), ("b.h5", b"two" * 1000)):
        expected.update(f"{name}\0{len(data)}\0".encode() + data)
    assert data_fingerprint(paths, root=tmp_path) == expected.hexdigest()


def test_a_changed_byte_or_name_changes_it(tmp_path):
    paths = write_tree(tmp_path)
    before = data_fingerprint(paths, root=tmp_path)
    (tmp_path / "b.h5").write_bytes(b"twO" + b"two" * 999)
    assert data_fingerprint(paths, root=tmp_path) != before
    (tmp_path / "b.h5").write_bytes(b"two" * 1000)
    assert data_fingerprint(paths, root=tmp_path) == before
    (tmp_path / "a" / "x.png").rename(tmp_path / "a" / "y.png")
    assert data_fingerprint(paths, root=tmp_path) != before

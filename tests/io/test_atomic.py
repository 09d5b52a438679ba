"""Write-then-rename: a failed write leaves nothing, a finished one is readable like any file."""

import os
import stat

import pytest

from shapepose.io import atomic_dir, atomic_file


def test_failed_write_leaves_nothing(tmp_path):
    target = tmp_path / "out.h5"
    with pytest.raises(RuntimeError):
        with atomic_file(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(RuntimeError):
        with atomic_dir(tmp_path / "frames") as tmp:
            (tmp / "a.ply").write_bytes(b"x")
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_finished_write_replaces_and_honours_umask(tmp_path):
    old = os.umask(0o022)
    try:
        target = tmp_path / "out.txt"
        target.write_text("old")
        with atomic_file(target) as tmp:
            tmp.write_text("new")
        assert target.read_text() == "new"
        assert stat.S_IMODE(target.stat().st_mode) == 0o644
        (tmp_path / "d").mkdir()
        (tmp_path / "d" / "stale").write_text("x")
        with atomic_dir(tmp_path / "d") as tmp:
            (tmp / "fresh").write_text("y")
        assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["fresh"]
        assert stat.S_IMODE((tmp_path / "d").stat().st_mode) == 0o755
        assert sorted(p.name for p in tmp_path.iterdir()) == ["d", "out.txt"]
    finally:
        os.umask(old)

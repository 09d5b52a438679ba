"""Extraction of DFAUST-layout registrations into per-frame meshes, and its bad-input handling."""

import numpy as np
import pytest
import trimesh

from shapepose.errors import InputError
from shapepose.io import read_ply
from shapepose.meshes import extract_meshes, list_frames, watertight_problem

from helpers.data import write_registrations


def _sphere_sequence(n_frames=7, seed=0):
    sphere = trimesh.creation.icosphere(subdivisions=2)
    rng = np.random.default_rng(seed)
    verts = np.stack([sphere.vertices * (1 + 0.1 * t) + rng.normal(0, 0.01, 3)
                      for t in range(n_frames)], axis=-1)  # (V, 3, T) like DFAUST
    return verts.astype(np.float32), sphere.faces.astype(np.int32)


def test_round_trip_is_exact(tmp_path):
    verts, faces = _sphere_sequence(9)
    src = write_registrations(tmp_path / "registrations_m.hdf5", {"50002_knees": verts}, faces)
    frames = extract_meshes(src, "50002_knees", tmp_path / "out", frame_stride=3, drop_first=1)
    assert frames == [1, 4, 7]
    listed = list_frames(tmp_path / "out")
    assert [(i, f.name) for i, f in listed] == [
        (1, "frame_000001.ply"), (4, "frame_000004.ply"), (7, "frame_000007.ply")]
    for index, path in listed:
        v, f = read_ply(path)
        assert v.dtype == np.float32
        assert np.array_equal(v, verts[:, :, index])  # bit-exact, straight from the HDF5 array
        assert np.array_equal(f, faces)
        assert trimesh.load(path, process=False).is_watertight  # other tools read it too


def test_max_frames_and_nothing_left(tmp_path):
    verts, faces = _sphere_sequence(5)
    src = write_registrations(tmp_path / "r.hdf5", {"1_a": verts}, faces)
    assert extract_meshes(src, "1_a", tmp_path / "o", max_frames=2) == [0, 1]
    with pytest.raises(InputError, match="no frame left"):
        extract_meshes(src, "1_a", tmp_path / "o2", drop_first=5)
    assert not (tmp_path / "o2").exists()


def test_watertight_problem_matches_an_independent_count():
    sphere = trimesh.creation.icosphere(subdivisions=1)
    assert watertight_problem(sphere.faces) is None
    open_faces = sphere.faces[1:]
    # trimesh's own edge bookkeeping is the independent oracle: 3 edges lose their partner.
    assert not trimesh.Trimesh(sphere.vertices, open_faces, process=False).is_watertight
    assert "3 boundary edges" in watertight_problem(open_faces)
    flipped = sphere.faces.copy()
    flipped[0] = flipped[0, ::-1]
    assert "more than once" in watertight_problem(flipped)


@pytest.mark.parametrize("case, match, where", [
    ("no_faces", "no 'faces' dataset", "key 'faces'"),
    ("wrong_shape", "wrong shape", "key '50002_knees'"),
    ("nan", "NaN", "frame 4"),
    ("open", "not watertight", "frame 0"),
    ("missing_key", "no such sequence", "key '50002_knees'"),
])
def test_bad_input_names_file_key_frame_and_leaves_nothing(tmp_path, case, match, where):
    verts, faces = _sphere_sequence(6)
    key = "50002_knees"
    if case == "no_faces":
        src = write_registrations(tmp_path / "r.hdf5", {key: verts}, None)
    elif case == "wrong_shape":
        src = write_registrations(tmp_path / "r.hdf5", {key: np.moveaxis(verts, 1, 2)}, faces)
    elif case == "nan":
        verts[10, 1, 4] = np.nan
        src = write_registrations(tmp_path / "r.hdf5", {key: verts}, faces)
    elif case == "open":
        src = write_registrations(tmp_path / "r.hdf5", {key: verts}, faces[2:])
    else:
        src = write_registrations(tmp_path / "r.hdf5", {"50002_hips": verts}, faces)
    out = tmp_path / "meshes"
    with pytest.raises(InputError) as err:
        extract_meshes(src, key, out)
    message = str(err.value)
    assert str(src) in message and match in message and where in message
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".meshes")]


def test_unreadable_file(tmp_path):
    bad = tmp_path / "registrations_f.hdf5"
    bad.write_bytes(b"not an hdf5 file at all")
    with pytest.raises(InputError, match="cannot be read as HDF5"):
        extract_meshes(bad, "50004_knees", tmp_path / "o")


def test_repair_holes_fills_and_shares_faces(tmp_path):
    verts, faces = _sphere_sequence(3)
    src = write_registrations(tmp_path / "r.hdf5", {"1_a": verts}, faces[1:])
    extract_meshes(src, "1_a", tmp_path / "o", repair_holes=True)
    for index, path in list_frames(tmp_path / "o"):
        v, f = read_ply(path)
        assert np.array_equal(v, verts[:, :, index])
        assert trimesh.Trimesh(v, f, process=False).is_watertight

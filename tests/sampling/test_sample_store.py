"""Sample files: round trips, encodings against brute force, byte-identical reruns, bad input."""

import hashlib
import time

import h5py
import numpy as np
import pytest
import trimesh
from scipy.spatial import cKDTree

from shapepose.errors import InputError
from shapepose.io import write_ply
from shapepose.sampling.sequence import frame_rng, sample_surface, sample_volume
from shapepose.sampling.store import (SurfaceSampleWriter, VolumeSampleWriter, morton_order,
                                      octahedral_decode, octahedral_encode, read_surface_samples,
                                      read_volume_samples)
from shapepose.sampling.volume import VolumeSamples

STRATA = {"interior": 0.25, "boundary": 0.5, "exterior": 0.25}
HALF = np.array([0.2137, 0.4311, 0.1719])  # box half extents, off the storage lattice's planes


def unit_vectors(n, seed):
    v = np.random.default_rng(seed).normal(size=(n, 3))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def angle_deg(a, b):
    cos = np.clip(np.einsum("ij,ij->i", a, b) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1), -1, 1)
    return np.degrees(np.arccos(cos))


def match_rows(original, decoded):
    """Index of the decoded row nearest to each original row; must be a permutation."""
    _, index = cKDTree(decoded).query(original)
    assert len(np.unique(index)) == len(original)
    return index


def test_surface_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    frames = [(3, rng.uniform([-0.3, 0.0, -0.2], [0.4, 1.7, 0.3], (5000, 3)), unit_vectors(5000, 1)),
              (8, rng.uniform(-1, 1, (5000, 3)) * [1, 0, 1], unit_vectors(5000, 2))]  # a flat frame
    path = tmp_path / "s.h5"
    with h5py.File(path, "w") as h5:
        writer = SurfaceSampleWriter(h5, 2, 5000, {"seed": 1})
        for index, (frame, points, normals) in enumerate(frames):
            writer.write(index, frame, points, normals)
        writer.close()
    out = read_surface_samples(path)
    assert out["frames"].tolist() == [3, 8]
    assert out["points"].shape == (2, 5000, 3) and out["points"].dtype == np.float32
    recorded = out["attrs"]["normal_max_angular_error_deg"]
    assert 0 < recorded < 1.0  # int8 octahedral
    assert out["attrs"]["row_order"] == "morton" and out["attrs"]["seed"] == 1
    for t, (frame, points, normals) in enumerate(frames):
        index = match_rows(points, out["points"][t])
        # Half a quantum of the frame's box per axis (65535 steps), plus float32 rounding.
        half_quantum = np.ptp(points, axis=0) / 65535 / 2
        error = np.abs(out["points"][t][index] - points)
        assert np.all(error <= half_quantum + 1e-6 * (1 + np.abs(points)))
        assert np.all(angle_deg(out["normals"][t][index], normals) <= recorded + 1e-4)
        one = read_surface_samples(path, frame=frame)
        np.testing.assert_array_equal(one["points"], out["points"][t])
        assert one["frames"].tolist() == [frame]


def test_volume_round_trip(tmp_path):
    rng = np.random.default_rng(3)
    n = 1001  # not a multiple of 8: the packed labels have a padded last byte
    samples = VolumeSamples(
        codes=rng.integers(0, 65536, (n, 3)).astype(np.uint16), origin=np.array([-0.5, 0.1, 2.0]),
        scale=np.array([1e-5, 2e-5, 3e-5]), inside=rng.random(n) < 0.4,
        weights=rng.random(n) / n, cells_per_stratum=np.array([1, 2, 3]),
        points_per_stratum=np.array([300, 400, 301]), vertices_outside=0.0,
    )
    path = tmp_path / "v.h5"
    with h5py.File(path, "w") as h5:
        writer = VolumeSampleWriter(h5, 1, n, {"seed": 2})
        writer.write(0, 12, samples)
    out = read_volume_samples(path, frame=12)
    expected = (samples.origin + samples.codes.astype(np.float64) * samples.scale).astype(np.float32)
    index = match_rows(expected, out["points"])
    np.testing.assert_array_equal(out["points"][index], expected)
    np.testing.assert_array_equal(out["inside"][index], samples.inside)
    np.testing.assert_array_equal(out["weights"][index], samples.weights.astype(np.float32))
    assert out["frames"].tolist() == [12]


def test_morton_order_matches_bit_interleaving():
    codes = np.random.default_rng(4).integers(0, 65536, (300, 3)).astype(np.uint16)

    def key(*xyz):
        """Bit b of coordinate a goes to bit 3 b + a."""
        return sum((int(value) >> b & 1) << (3 * b + a) for a, value in enumerate(xyz) for b in range(16))

    brute = sorted(range(len(codes)), key=lambda i: key(*codes[i]))
    assert morton_order(codes).tolist() == brute


def test_octahedral_normals():
    normals = unit_vectors(100_000, 5)
    codes = octahedral_encode(normals)
    assert codes.dtype == np.int8 and codes.shape == (100_000, 2)
    decoded = octahedral_decode(codes)
    np.testing.assert_allclose(np.linalg.norm(decoded, axis=1), 1.0, atol=1e-6)
    assert angle_deg(decoded, normals).max() < 1.0
    axes = np.concatenate([np.eye(3), -np.eye(3)])
    np.testing.assert_allclose(octahedral_decode(octahedral_encode(axes)), axes, atol=1e-7)


def box_mesh_dir(path, frames=(0, 5, 12), inward=False):
    """Write a box mesh per frame, shifted a little each frame, as frame_{i:06d}.ply."""
    box = trimesh.creation.box(extents=2 * HALF)
    faces = np.asarray(box.faces)[:, ::-1] if inward else np.asarray(box.faces)
    path.mkdir()
    for i in frames:
        write_ply(path / f"frame_{i:06d}.ply", np.asarray(box.vertices) + [0.01 * i, 0.0, 0.0], faces)
    return path


def run_volume(mesh_dir, out, seed=1, n_points=3000):
    sample_volume(str(mesh_dir), str(out), sequence="jumping", n_points=n_points,
                  cuboid=(1.0, 2.0, 1.0), center="bbox", cell_size=0.04, strata=STRATA, seed=seed)


def test_volume_driver_labels_weights_and_attrs(tmp_path):
    mesh_dir = box_mesh_dir(tmp_path / "meshes")
    out = tmp_path / "v.h5"
    run_volume(mesh_dir, out)
    data = read_volume_samples(out)
    assert data["frames"].tolist() == [0, 5, 12]
    for t, frame in enumerate([0, 5, 12]):
        centre = np.array([0.01 * frame, 0.0, 0.0])
        truth = np.all(np.abs(data["points"][t] - centre) < HALF, axis=1)
        np.testing.assert_array_equal(data["inside"][t], truth)
        assert data["weights"][t].sum(dtype=np.float64) == pytest.approx(1.0, rel=1e-6)
        box_fraction = np.prod(2 * HALF) / 2.0
        assert np.sum(data["weights"][t] * data["inside"][t]) == pytest.approx(box_fraction, rel=0.05)
    attrs = data["attrs"]
    assert attrs["n_points"] == 3000 and attrs["seed"] == 1 and attrs["center"] == "bbox"
    np.testing.assert_array_equal(attrs["cuboid"], [1.0, 2.0, 1.0])
    assert attrs["strata_boundary"] == 0.5 and "winding number" in attrs["inside_test"]


def test_surface_driver_points_on_the_box(tmp_path):
    mesh_dir = box_mesh_dir(tmp_path / "meshes")
    out = tmp_path / "s.h5"
    sample_surface(str(mesh_dir), str(out), sequence="jumping", n_points=2000, seed=1)
    data = read_surface_samples(out, frame=5)
    local = data["points"] - [0.05, 0.0, 0.0]
    # Every point lies on a wall (up to quantization), with that wall's outward normal.
    axis = np.argmax(np.abs(local) / HALF, axis=1)
    rows = np.arange(len(local))
    np.testing.assert_allclose(np.abs(local[rows, axis]), HALF[axis], atol=2e-5)
    np.testing.assert_allclose(data["normals"][rows, axis], np.sign(local[rows, axis]), atol=1e-6)


def test_same_seed_gives_identical_bytes(tmp_path):
    mesh_dir = box_mesh_dir(tmp_path / "meshes")
    outputs = {}
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        time.sleep(1.1 if name == "b" else 0)  # a timestamp in the file would now differ
        run_volume(mesh_dir, tmp_path / f"v_{name}.h5", seed=seed)
        sample_surface(str(mesh_dir), str(tmp_path / f"s_{name}.h5"), sequence="jumping",
                       n_points=2000, seed=seed)
        outputs[name] = [(tmp_path / f"{kind}_{name}.h5").read_bytes() for kind in ("v", "s")]
    assert outputs["a"] == outputs["b"]
    assert outputs["a"][0] != outputs["c"][0] and outputs["a"][1] != outputs["c"][1]


def test_frame_rng_follows_the_documented_recipe():
    stage_hash = int.from_bytes(hashlib.sha256(b"volume").digest()[:8], "little")
    sequence_hash = int.from_bytes(hashlib.sha256(b"jumping").digest()[:8], "little")
    words = [7, stage_hash, sequence_hash, 12]
    expected = np.random.default_rng(np.random.SeedSequence(words)).random(3)
    np.testing.assert_array_equal(frame_rng(7, "volume", "jumping", 12).random(3), expected)
    assert frame_rng(7, "volume", "jumping", 13).random() != frame_rng(7, "volume", "jumping", 12).random()
    assert frame_rng(7, "volume", "running", 12).random() != frame_rng(7, "volume", "jumping", 12).random()
    assert frame_rng(7, "surface", "jumping", 12).random() != frame_rng(7, "volume", "jumping", 12).random()


def assert_nothing_written(out):
    assert not out.exists()
    assert not list(out.parent.glob(f".{out.name}*"))


@pytest.mark.parametrize("driver", ["surface", "volume"])
def test_bad_input_names_the_file_and_leaves_nothing(tmp_path, driver):
    def run(mesh_dir, out):
        if driver == "surface":
            sample_surface(str(mesh_dir), str(out), sequence="s", n_points=100, seed=0)
        else:
            run_volume(mesh_dir, out, n_points=100)

    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "out" / "samples.h5"
    with pytest.raises(InputError, match="empty"):
        run(empty, out)
    assert_nothing_written(out)

    nan_dir = box_mesh_dir(tmp_path / "nan")
    box = trimesh.creation.box(extents=2 * HALF)
    vertices = np.asarray(box.vertices, dtype=np.float32)
    vertices[3, 1] = np.nan
    write_ply(nan_dir / "frame_000005.ply", vertices, box.faces)
    with pytest.raises(InputError, match="frame_000005.ply") as error:
        run(nan_dir, out)
    assert "non-finite" in str(error.value)
    assert_nothing_written(out)

    corrupt_dir = box_mesh_dir(tmp_path / "corrupt")
    (corrupt_dir / "frame_000012.ply").write_bytes(b"ply\nformat binary_little_endian 1.0\nelement vertex 8\n"
                                                   b"end_header\n" + b"\x00" * 7)
    with pytest.raises(InputError, match="frame_000012.ply"):
        run(corrupt_dir, out)
    assert_nothing_written(out)


def test_inward_faces_are_rejected_for_volume(tmp_path):
    mesh_dir = box_mesh_dir(tmp_path / "inward", frames=(0,), inward=True)
    out = tmp_path / "v.h5"
    with pytest.raises(InputError, match="frame_000000.ply"):
        run_volume(mesh_dir, out)
    assert_nothing_written(out)


def test_readers_reject_missing_corrupt_and_wrong_files(tmp_path):
    with pytest.raises(InputError, match="nope.h5"):
        read_volume_samples(tmp_path / "nope.h5")
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(b"not hdf5 at all")
    with pytest.raises(InputError, match="garbage.h5"):
        read_surface_samples(garbage)
    mesh_dir = box_mesh_dir(tmp_path / "meshes", frames=(0,))
    surface = tmp_path / "s.h5"
    sample_surface(str(mesh_dir), str(surface), sequence="s", n_points=100, seed=0)
    with pytest.raises(InputError, match="s.h5"):
        read_volume_samples(surface)  # a surface file is not a volume file
    with pytest.raises(InputError, match="frame 4"):
        read_surface_samples(surface, frame=4)
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(surface.read_bytes()[:2000])
    with pytest.raises(InputError, match="truncated.h5"):
        read_surface_samples(truncated)

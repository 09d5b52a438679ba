"""The inside test against analytic solids: sphere, box, torus, a self-intersecting union, a crack."""

import numpy as np
import pytest
import trimesh

from shapepose.sampling.inside import WindingNumber, inside_mesh, solid_angle_sum

N_POINTS = 100_000
MIN_AGREEMENT = 0.9999


def box_mesh(half: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """An axis-aligned box of half extents `half`, 12 outward triangles, built by hand."""
    corners = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], float) * half
    # Corner index = 4 * (x > 0) + 2 * (y > 0) + (z > 0); each quad listed counter-clockwise from outside.
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    faces = [tri for a, b, c, d in quads for tri in ((a, b, c), (a, c, d))]
    return corners, np.array(faces)


def torus_mesh(major: float, minor: float, n_around: int, n_tube: int) -> tuple[np.ndarray, np.ndarray]:
    """A parametric torus around the z axis, vertices on the true surface, outward triangles."""
    u = np.arange(n_around) * 2 * np.pi / n_around
    v = np.arange(n_tube) * 2 * np.pi / n_tube
    uu, vv = np.meshgrid(u, v, indexing="ij")
    ring = major + minor * np.cos(vv)
    vertices = np.stack([ring * np.cos(uu), ring * np.sin(uu), minor * np.sin(vv)], -1).reshape(-1, 3)
    i, j = np.meshgrid(np.arange(n_around), np.arange(n_tube), indexing="ij")
    a = i * n_tube + j
    b = ((i + 1) % n_around) * n_tube + j
    c = ((i + 1) % n_around) * n_tube + (j + 1) % n_tube
    d = i * n_tube + (j + 1) % n_tube
    faces = np.concatenate([np.stack([a, b, c], -1).reshape(-1, 3), np.stack([a, c, d], -1).reshape(-1, 3)])
    return vertices, faces


def signed_volume(vertices, faces):
    t = vertices[faces]
    return np.einsum("ij,ij->i", t[:, 0], np.cross(t[:, 1], t[:, 2])).sum() / 6


def test_hand_built_meshes_are_outward():
    vertices, faces = torus_mesh(1.0, 0.3, 64, 24)
    assert signed_volume(vertices, faces) > 0
    assert signed_volume(*box_mesh(np.array([1.0, 2.0, 3.0]))) == pytest.approx(48.0)


def test_sphere_agrees_with_analytic():
    sphere = trimesh.creation.icosphere(subdivisions=7, radius=1.0)
    points = np.random.default_rng(0).uniform(-1.1, 1.1, (N_POINTS, 3))
    truth = np.linalg.norm(points, axis=1) < 1.0
    labels = inside_mesh(sphere.vertices, sphere.faces, points)
    assert np.mean(labels == truth) >= MIN_AGREEMENT


def test_box_agrees_with_analytic():
    half = np.array([0.2137, 0.5311, 0.3719])
    vertices, faces = box_mesh(half)
    points = np.random.default_rng(1).uniform(-1.1 * half, 1.1 * half, (N_POINTS, 3))
    truth = np.all(np.abs(points) < half, axis=1)
    labels = inside_mesh(vertices, faces, points)
    assert np.mean(labels == truth) >= MIN_AGREEMENT


def test_torus_agrees_with_analytic():
    major, minor = 1.0, 0.3
    vertices, faces = torus_mesh(major, minor, 1200, 360)
    points = np.random.default_rng(2).uniform([-1.4, -1.4, -0.35], [1.4, 1.4, 0.35], (N_POINTS, 3))
    truth = (np.hypot(points[:, 0], points[:, 1]) - major) ** 2 + points[:, 2] ** 2 < minor**2
    labels = inside_mesh(vertices, faces, points)
    assert np.mean(labels == truth) >= MIN_AGREEMENT


def test_self_intersecting_union_counts_the_overlap_inside():
    """Two overlapping spheres in one mesh: in the lens, ray parity says outside; w = 2 is inside."""
    centres = np.array([[-0.3, 0.0, 0.0], [0.3, 0.0, 0.0]])
    parts = [trimesh.creation.icosphere(subdivisions=6, radius=0.5) for _ in centres]
    vertices = np.concatenate([p.vertices + c for p, c in zip(parts, centres)])
    faces = np.concatenate([parts[0].faces, parts[1].faces + len(parts[0].vertices)])
    points = np.random.default_rng(3).uniform([-0.85, -0.55, -0.55], [0.85, 0.55, 0.55], (N_POINTS, 3))
    distance = np.linalg.norm(points[:, None] - centres[None], axis=2)  # (N, 2)
    in_both = np.all(distance < 0.5, axis=1)
    truth = np.any(distance < 0.5, axis=1)
    assert in_both.sum() > 4_000  # the lens is well sampled

    winding = WindingNumber(vertices, faces)
    values = winding(points)
    assert np.mean((values > 0.5) == truth) >= MIN_AGREEMENT
    # Well inside the lens the winding number is 2 (an even number of crossings either way).
    deep = np.all(distance < 0.45, axis=1)
    assert np.mean(values[deep] == 2) > 0.9999


def test_tiny_crack_is_tolerated():
    """A sphere missing one small face: lines through the hole disagree and fall back."""
    sphere = trimesh.creation.icosphere(subdivisions=5, radius=1.0)
    faces = np.delete(np.asarray(sphere.faces), 100, axis=0)
    points = np.random.default_rng(4).uniform(-1.1, 1.1, (N_POINTS, 3))
    truth = np.linalg.norm(points, axis=1) < 1.0
    labels = inside_mesh(sphere.vertices, faces, points)
    assert np.mean(labels == truth) >= 0.999


def test_solid_angle_of_an_octant_triangle():
    """The triangle (e_x, e_y, e_z) subtends one eighth of the sphere from the origin."""
    triangle = np.eye(3)[None]
    seen_from = np.array([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    values = solid_angle_sum(triangle, seen_from)
    # From the origin the triangle's normal (1, 1, 1) points away: it is seen from inside.
    assert values[0] == pytest.approx(1 / 8, abs=1e-12)
    assert values[1] < 0


@pytest.mark.parametrize("n_points", [7, 5000])  # numpy sum and libigl for large batches
def test_exact_winding_of_a_box(n_points):
    half = np.array([0.3, 0.4, 0.5])
    winding = WindingNumber(*box_mesh(half))
    points = np.random.default_rng(5).uniform(-2 * half, 2 * half, (n_points, 3))
    truth = np.all(np.abs(points) < half, axis=1).astype(float)
    np.testing.assert_allclose(winding.exact(points), truth, atol=1e-9)


def test_segment_crossings_of_a_box_wall():
    """From the centre of a unit box towards +x: one exit at t = 0.5, none before it."""
    winding = WindingNumber(*box_mesh(np.array([0.5, 0.5, 0.5])))
    origins = np.array([[0.0, 0.013, -0.021]] * 3)
    counts, reliable = winding.crossings(origins, np.array([1.0, 0.0, 0.0]), np.array([0.4, 0.6, np.inf]))
    assert reliable.all()
    np.testing.assert_array_equal(counts, [0, 1, 1])
    counts, _ = winding.crossings(origins - [2.0, 0, 0], np.array([1.0, 0.0, 0.0]))
    np.testing.assert_array_equal(counts, [0, 0, 0])  # enter (-1) then leave (+1)

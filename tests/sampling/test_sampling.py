"""Surface and volume samplers against analytic geometry and hand-computed allocations."""

import numpy as np
import pytest
import trimesh
from scipy import stats

from shapepose.sampling.surface import sample_surface_points
from shapepose.sampling.volume import (allocate_points, make_grid, normalized_fractions,
                                       sample_volume_points)

RADIUS = 0.4
SPHERE_FRACTION = 4 / 3 * np.pi * RADIUS**3  # of a 1 x 1 x 1 cuboid


@pytest.fixture(scope="module")
def sphere():
    mesh = trimesh.creation.icosphere(subdivisions=5, radius=RADIUS)
    return np.asarray(mesh.vertices), np.asarray(mesh.faces)


def polyhedron_volume(vertices, faces):
    """Divergence theorem: the sum of the signed tetrahedra (origin, face)."""
    t = vertices[faces]
    return np.einsum("ij,ij->i", t[:, 0], np.cross(t[:, 1], t[:, 2])).sum() / 6


def unit_cube_samples(sphere, n_points, seed):
    return sample_volume_points(*sphere, n_points, np.random.default_rng(seed),
                                cuboid=(1.0, 1.0, 1.0), center=[0.0, 0.0, 0.0], cell_size=0.04)


def test_weighted_inside_fraction_of_a_sphere(sphere):
    samples = unit_cube_samples(sphere, 100_000, seed=0)
    estimate = np.sum(samples.weights * samples.inside)
    assert estimate == pytest.approx(SPHERE_FRACTION, rel=0.01)
    assert samples.weights.sum() == pytest.approx(1.0, rel=1e-6)
    assert 0.35 <= samples.inside.mean() <= 0.65
    assert samples.points_per_stratum.tolist() == [25_000, 50_000, 25_000]
    assert samples.cells_per_stratum.sum() == 25**3


def test_labels_agree_with_the_sphere(sphere):
    samples = unit_cube_samples(sphere, 100_000, seed=1)
    points = samples.points
    assert np.all(np.abs(points) <= 0.5)
    truth = np.linalg.norm(points, axis=1) < RADIUS
    # Half the points sit in boundary cells, so the faceting of the mesh shows more than for
    # uniform points; still nearly all agree.
    assert np.mean(samples.inside == truth) >= 0.999


def test_estimate_is_unbiased_over_seeds(sphere):
    """The mean of 20 estimates lies within 3 standard errors of the mesh's exact volume."""
    truth = polyhedron_volume(*sphere)  # of the cuboid of volume 1
    estimates = np.array([np.sum(s.weights * s.inside) for s in
                          (unit_cube_samples(sphere, 10_000, seed) for seed in range(100, 120))])
    standard_error = estimates.std(ddof=1) / np.sqrt(len(estimates))
    assert abs(estimates.mean() - truth) < 3 * standard_error
    assert standard_error < 0.01 * truth  # the check above is not vacuous


def test_mesh_partly_outside_the_cuboid_still_unbiased(sphere):
    """A fixed centre that cuts the sphere: the estimate is of the part inside the cuboid."""
    vertices, faces = sphere
    samples = sample_volume_points(vertices, faces, 100_000, np.random.default_rng(2),
                                   cuboid=(1.0, 1.0, 1.0), center=[0.0, 0.0, 0.6])  # cuboid z in [0.1, 1.1]
    cap_height = RADIUS - 0.1
    cap = np.pi * cap_height**2 * (3 * RADIUS - cap_height) / 3
    assert np.sum(samples.weights * samples.inside) == pytest.approx(cap, rel=0.02)
    assert 0 < samples.vertices_outside < 1


def test_same_seed_same_samples(sphere):
    a = unit_cube_samples(sphere, 5_000, seed=7)
    b = unit_cube_samples(sphere, 5_000, seed=7)
    c = unit_cube_samples(sphere, 5_000, seed=8)
    assert a.codes.tobytes() == b.codes.tobytes()
    assert a.inside.tobytes() == b.inside.tobytes() and a.weights.tobytes() == b.weights.tobytes()
    assert a.codes.tobytes() != c.codes.tobytes()
    p, n = sample_surface_points(*sphere, 1000, np.random.default_rng(3))
    q, m = sample_surface_points(*sphere, 1000, np.random.default_rng(3))
    assert p.tobytes() == q.tobytes() and n.tobytes() == m.tobytes()


def test_grid_tiles_the_cuboid_exactly():
    grid = make_grid(np.array([0.1, 1.0, -0.2]), (1.0, 2.0, 1.0), 0.04)
    assert grid.cells.tolist() == [25, 50, 25]
    np.testing.assert_allclose(grid.cell_dims * grid.cells, [1.0, 2.0, 1.0])
    assert np.all(grid.cells * grid.steps <= 65536)
    # The lattice spans the cuboid: first and last codes are half a step inside its faces.
    np.testing.assert_allclose(grid.decode(np.zeros((1, 3)))[0], [-0.4, 0.0, -0.7] + grid.scale / 2)
    last = grid.decode((grid.cells * grid.steps - 1)[None])[0]
    np.testing.assert_allclose(last, [0.6, 2.0, 0.3] - grid.scale / 2)


def test_allocation_by_hand():
    fractions = normalized_fractions({"interior": 0.25, "boundary": 0.5, "exterior": 0.25})
    assert allocate_points(100, np.array([5, 10, 10]), fractions).tolist() == [25, 50, 25]
    # 0.5 / 0.75 of 100 = 66.67 -> 67, 0.25 / 0.75 of 100 = 33.33 -> 33; the empty stratum gets none.
    assert allocate_points(100, np.array([0, 10, 10]), fractions).tolist() == [0, 67, 33]
    # 0.75, 1.5, 0.75: floors 0, 1, 0; the two extra points go to the largest remainders.
    assert allocate_points(3, np.array([1, 1, 1]), fractions).tolist() == [1, 1, 1]
    with pytest.raises(ValueError):  # fewer points than non-empty strata
        allocate_points(2, np.array([1, 1, 1]), fractions)
    with pytest.raises(ValueError):
        normalized_fractions({"interior": 0.0, "boundary": 0.5, "exterior": 0.5})
    with pytest.raises(ValueError):
        normalized_fractions({"inside": 1.0})


def test_every_nonempty_stratum_gets_a_point():
    fractions = normalized_fractions({"interior": 0.001, "boundary": 0.998, "exterior": 0.001})
    assert allocate_points(10, np.array([3, 3, 3]), fractions).tolist() == [1, 8, 1]


def test_surface_points_lie_on_the_sphere_with_radial_normals(sphere):
    vertices, faces = sphere
    points, normals = sample_surface_points(vertices, faces, 20_000, np.random.default_rng(4))
    radius = np.linalg.norm(points, axis=1)
    # A triangle inscribed in the sphere lies between its plane, at sqrt(R^2 - rho^2) from the
    # centre (rho: circumradius, abc / 4 area), and the sphere.
    t = vertices[faces]
    a, b, c = (np.linalg.norm(t[:, i] - t[:, j], axis=1) for i, j in ((0, 1), (1, 2), (2, 0)))
    half_perimeter = (a + b + c) / 2
    area = np.sqrt(half_perimeter * (half_perimeter - a) * (half_perimeter - b) * (half_perimeter - c))
    rho = a * b * c / (4 * area)
    assert np.all(radius <= RADIUS + 1e-12)
    assert np.all(radius >= np.sqrt(RADIUS**2 - rho.max() ** 2) - 1e-12)
    assert RADIUS - radius.min() < 1e-3 * RADIUS  # tiny
    np.testing.assert_allclose(np.linalg.norm(normals, axis=1), 1.0, atol=1e-12)
    assert np.all(np.einsum("ij,ij->i", normals, points / radius[:, None]) > 0.999)


def test_surface_sampling_is_area_uniform_over_box_faces():
    half = np.array([0.5, 1.0, 1.5])  # face areas 6, 3 and 2 (x, y and z faces)
    box = trimesh.creation.box(extents=2 * half)
    n = 60_000
    points, normals = sample_surface_points(box.vertices, box.faces, n, np.random.default_rng(5))
    axis = np.argmax(np.abs(points) / half, axis=1)  # the wall a point lies on: x, y or z
    rows = np.arange(n)
    np.testing.assert_allclose(np.abs(points[rows, axis]), half[axis], atol=1e-12)
    counts = np.bincount(2 * axis + (points[rows, axis] > 0), minlength=6)
    areas = np.repeat([2 * half[1] * 2 * half[2], 2 * half[0] * 2 * half[2], 2 * half[0] * 2 * half[1]], 2)
    expected = n * areas / areas.sum()
    chi_square = np.sum((counts - expected) ** 2 / expected)
    assert chi_square < stats.chi2.ppf(1 - 1e-6, df=5)
    # The normal of each point is its wall's outward axis.
    np.testing.assert_allclose(normals[rows, axis], np.sign(points[rows, axis]))


def test_points_are_uniform_inside_a_triangle():
    """The corner quarter of a triangle (barycentric weight of a corner > 1/2) holds 1/4 of them."""
    corners = np.array([[0.0, 0.0, 0.0], [2.0, 0.0, 0.0], [0.3, 1.7, 0.0]])
    n = 40_000
    points, _ = sample_surface_points(corners, np.array([[0, 1, 2]]), n, np.random.default_rng(6))
    # Barycentric weights by solving the 2D system.
    edges = np.stack([corners[1, :2] - corners[0, :2], corners[2, :2] - corners[0, :2]], axis=1)
    uv = np.linalg.solve(edges, (points[:, :2] - corners[0, :2]).T).T
    weights = np.column_stack([1 - uv.sum(axis=1), uv])
    assert weights.min() >= -1e-12
    for corner in range(3):
        share = np.mean(weights[:, corner] > 0.5)
        assert abs(share - 0.25) < 5 * np.sqrt(0.25 * 0.75 / n)


def test_volume_labels_on_a_skinned_body_match_libigl():
    """Labels from cell classes and ray crossings agree with an independent winding number.

    The demo body is posed by linear blend skinning, so it can self-intersect; libigl's fast
    winding number (a separate implementation) is the oracle for every drawn point.
    """
    import igl

    from shapepose.bodies.demo import example_mesh

    vertices, faces = example_mesh(seed=3)
    samples = sample_volume_points(vertices, faces, 20_000, np.random.default_rng(5))
    oracle = igl.fast_winding_number(vertices.astype(np.float64), faces.astype(np.int64),
                                     samples.points) > 0.5
    assert np.mean(samples.inside == oracle) >= 0.9999
    assert 0.3 < samples.inside.mean() < 0.7

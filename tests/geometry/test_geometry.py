"""shapepose.geometry against closed forms (Rodrigues, the trace angle, Markley's eigenvector) and scipy."""

import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from shapepose import geometry
from shapepose.geometry import quaternions


def rodrigues(axis, degrees) -> np.ndarray:
    """R = I + sin t K + (1 - cos t) K^2 for the unit axis' cross-product matrix K."""
    k = np.asarray(axis, dtype=np.float64) / np.linalg.norm(axis)
    K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    t = math.radians(degrees)
    return np.eye(3) + math.sin(t) * K + (1 - math.cos(t)) * K @ K


def axis_angle(axis, degrees) -> np.ndarray:
    """(w, x, y, z) = (cos t/2, sin t/2 * unit axis)."""
    k = np.asarray(axis, dtype=np.float64) / np.linalg.norm(axis)
    half = math.radians(degrees) / 2
    return np.concatenate([[math.cos(half)], math.sin(half) * k])


def random_quaternions(n: int, seed: int) -> np.ndarray:
    """(n, 4) unit quaternions (w first) of random sign."""
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((n, 4))
    return q / np.linalg.norm(q, axis=1, keepdims=True)


CASES = [([0, 0, 1], 90.0), ([1, 2, 3], 37.0), ([1, 0, 0], 180.0), ([0, 1, 0], -120.0), ([1, 1, 0], 0.0)]


@pytest.mark.parametrize("axis, degrees", CASES)
def test_quaternion_to_matrix_is_rodrigues_and_scipy(axis, degrees):
    q = axis_angle(axis, degrees)
    R = quaternions.quaternion_to_matrix(torch.as_tensor(q)).numpy()
    np.testing.assert_allclose(R, rodrigues(axis, degrees), atol=1e-12)
    np.testing.assert_allclose(geometry.matrix_from_quaternion(q), R, atol=1e-12)
    # scipy orders (x, y, z, w): the w-first convention is converted, not passed through
    np.testing.assert_allclose(Rotation.from_quat(np.roll(q, -1)).as_matrix(), R, atol=1e-12)
    # not unit: normalized first, on both sides
    np.testing.assert_allclose(quaternions.quaternion_to_matrix(torch.as_tensor(3 * q)).numpy(), R, atol=1e-12)
    np.testing.assert_allclose(geometry.matrix_from_quaternion(-3 * q), R, atol=1e-12)


def test_matrix_and_quaternion_round_trip_batched_with_w_first_and_positive():
    q = random_quaternions(24, seed=1).reshape(2, 3, 4, 4)
    R = geometry.matrix_from_quaternion(q)
    assert R.shape == (2, 3, 4, 3, 3)
    np.testing.assert_allclose(quaternions.quaternion_to_matrix(torch.as_tensor(q)).numpy(), R, atol=1e-12)
    back = geometry.quaternion_from_matrix(R)
    assert back.shape == q.shape and np.all(back[..., 0] >= 0)
    np.testing.assert_allclose(back, q * np.sign(q[..., :1]), atol=1e-12)  # q and -q: w >= 0 chosen
    np.testing.assert_allclose(geometry.quaternion_from_matrix(np.eye(3)), [1, 0, 0, 0], atol=1e-15)
    np.testing.assert_allclose(geometry.quaternion_from_matrix(rodrigues([0, 0, 1], 90)),
                               [math.sqrt(0.5), 0, 0, math.sqrt(0.5)], atol=1e-15)


def test_multiply_composes_and_conjugate_inverts():
    a, b = random_quaternions(2, seed=2)
    ab = quaternions.multiply(torch.as_tensor(a), torch.as_tensor(b))
    np.testing.assert_allclose(geometry.matrix_from_quaternion(ab.numpy()),
                               geometry.matrix_from_quaternion(a) @ geometry.matrix_from_quaternion(b),
                               atol=1e-12)
    scipy_ab = Rotation.from_quat(a, scalar_first=True) * Rotation.from_quat(b, scalar_first=True)
    assert geometry.angle_between(ab.numpy(), scipy_ab.as_quat(scalar_first=True)) < 1e-7
    one = quaternions.multiply(torch.as_tensor(a), quaternions.conjugate(torch.as_tensor(a))).numpy()
    np.testing.assert_allclose(one, [1, 0, 0, 0], atol=1e-12)
    points = torch.as_tensor(np.random.default_rng(3).standard_normal((5, 3)))
    np.testing.assert_allclose(quaternions.rotate(torch.as_tensor(a), points).numpy(),
                               points.numpy() @ geometry.matrix_from_quaternion(a).T, atol=1e-12)


def test_angle_between_is_the_trace_angle_and_scipy_magnitude_and_broadcasts():
    q1, q2 = random_quaternions(10, seed=4), random_quaternions(10, seed=5)
    A, B = geometry.matrix_from_quaternion(q1), geometry.matrix_from_quaternion(q2)
    trace = np.arccos(np.clip((np.trace(np.swapaxes(A, -1, -2) @ B, axis1=-2, axis2=-1) - 1) / 2, -1, 1))
    angle = geometry.angle_between(q1, q2)
    np.testing.assert_allclose(angle, trace, atol=1e-7)
    magnitude = (Rotation.from_quat(q1, scalar_first=True).inv() * Rotation.from_quat(q2, scalar_first=True)).magnitude()
    np.testing.assert_allclose(angle, magnitude, atol=1e-7)
    np.testing.assert_allclose(geometry.angle_between(q1, -q2), angle, atol=1e-12)  # q, -q: one pose
    pairwise = geometry.angle_between(q1[:, None], q1[None])
    assert pairwise.shape == (10, 10) and np.allclose(np.diag(pairwise), 0, atol=1e-6)
    np.testing.assert_allclose(pairwise[2, 7], geometry.angle_between(q1[2], q1[7]))
    assert math.degrees(geometry.angle_between(axis_angle([0, 0, 1], 0), axis_angle([0, 0, 1], 90))) \
        == pytest.approx(90)


def markley(q: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Markley et al. (2007) by hand: the top eigenvector of sum w_i q_i q_i^T, w >= 0."""
    values, vectors = np.linalg.eigh((q * w[:, None]).T @ q)
    mean = vectors[:, np.argmax(values)]
    return mean if mean[0] >= 0 else -mean


@pytest.mark.parametrize("seed", range(5))
def test_average_rotation_is_markleys_eigenvector(seed):
    rng = np.random.default_rng(seed)
    centre = random_quaternions(1, seed=100 + seed)[0]
    noise = [axis_angle(rng.standard_normal(3), rng.uniform(0, 40)) for _ in range(9)]
    q = quaternions.multiply(torch.as_tensor(np.array(noise)), torch.as_tensor(centre)).numpy()
    q *= rng.choice([-1.0, 1.0], size=(len(q), 1))  # the signs of the inputs do not matter
    weights = rng.uniform(0.1, 3.0, size=len(q))
    np.testing.assert_allclose(geometry.average_rotation(q, weights), markley(q, weights), atol=1e-12)
    np.testing.assert_allclose(geometry.average_rotation(q), markley(q, np.ones(len(q))), atol=1e-12)
    # the chordal L2 mean: no nearby rotation has a smaller sum of squared matrix distances
    mean = geometry.average_rotation(q, weights)
    R = geometry.matrix_from_quaternion(q)

    def loss(m):
        return np.sum(weights * np.sum((R - geometry.matrix_from_quaternion(m)) ** 2, axis=(1, 2)))

    for nudge in (axis_angle(rng.standard_normal(3), 1.0) for _ in range(5)):
        moved = quaternions.multiply(torch.as_tensor(nudge), torch.as_tensor(mean)).numpy()
        assert loss(mean) < loss(moved)


def test_average_rotation_of_one_and_of_none():
    q = axis_angle([1, 2, 3], 50)
    np.testing.assert_allclose(geometry.average_rotation(-q[None]), q, atol=1e-12)
    with pytest.raises(ValueError, match="no rotations"):
        geometry.average_rotation(np.zeros((0, 4)))


@pytest.mark.parametrize("position", [[2.0, 0.0, 0.0], [0.3, -1.2, 0.8], [-1.0, 1.0, -1.5]])
def test_look_at_rotation_looks_at_the_origin_with_z_up(position):
    R = geometry.look_at_rotation(position)
    np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(R) == pytest.approx(1.0)
    p = np.asarray(position)
    np.testing.assert_allclose(R[2], -p / np.linalg.norm(p), atol=1e-12)  # forward: to the origin
    assert R[0, 2] == pytest.approx(0.0, abs=1e-12)  # right is horizontal
    assert R[1, 2] < 0  # image down is world down (z up)
    np.testing.assert_allclose(R @ (-p), [0, 0, np.linalg.norm(p)], atol=1e-12)
    with pytest.raises(ValueError, match="up axis"):
        geometry.look_at_rotation([0.0, 0.0, 2.0])

"""Shape-and-pose metrics, frame alignment and sharp silhouettes against brute force and hand values."""

import math

import numpy as np
import pytest

from shapepose.geometry import average_rotation
from shapepose.images.rgba import mask_disagreement
from shapepose.shape_pose.alignment import (
    apply_alignment,
    fit_alignment,
    icp,
)
from shapepose.shape_pose.metrics import (
    chamfer,
    nearest_distances,
    pose_errors_deg,
    pose_summary,
)
from shapepose.shape_pose.sharp import sharp_mask

IDENTITY = np.array([1.0, 0.0, 0.0, 0.0])


def axis_angle_quat(axis, degrees):
    """(w, x, y, z) = (cos t/2, sin t/2 * unit axis), written out by hand."""
    axis = np.asarray(axis, dtype=np.float64)
    axis = axis / np.linalg.norm(axis)
    half = math.radians(degrees) / 2
    return np.concatenate([[math.cos(half)], math.sin(half) * axis])


def rodrigues(axis, degrees):
    """Rotation matrix of `degrees` about `axis` by Rodrigues' formula (independent of quaternions)."""
    k = np.asarray(axis, dtype=np.float64)
    k = k / np.linalg.norm(k)
    K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    t = math.radians(degrees)
    return np.eye(3) + math.sin(t) * K + (1 - math.cos(t)) * K @ K


def random_axis_angle(rng, lo=0.0, hi=180.0):
    axis = rng.normal(size=3)
    return axis / np.linalg.norm(axis), float(rng.uniform(lo, hi))


def lumpy_cloud(rng, n):
    """An asymmetric cloud (anisotropic blob plus an off-centre lump): no rotation maps it to itself."""
    blob = rng.normal(size=(n - n // 5, 3)) * [0.3, 0.12, 0.07]
    lump = rng.normal(size=(n // 5, 3)) * 0.03 + [0.2, 0.08, 0.05]
    return np.concatenate([blob, lump])


# ---- Chamfer -------------------------------------------------------------------------------

def test_chamfer_matches_brute_force():
    rng = np.random.default_rng(0)
    pred, gt = rng.normal(size=(70, 3)), rng.uniform(-1, 1, size=(45, 3))
    pairwise = np.sqrt(((pred[:, None, :] - gt[None, :, :]) ** 2).sum(-1))  # (70, 45)
    result = chamfer(pred, gt)
    assert result["precision"] == pytest.approx(pairwise.min(axis=1).mean(), rel=1e-12)
    assert result["coverage"] == pytest.approx(pairwise.min(axis=0).mean(), rel=1e-12)
    assert result["chamfer"] == pytest.approx(pairwise.min(axis=1).mean() + pairwise.min(axis=0).mean())
    np.testing.assert_allclose(nearest_distances(gt, pred), pairwise.min(axis=0), rtol=1e-12)


def sphere_points(rng, n):
    """n points uniform on the unit sphere."""
    v = rng.normal(size=(n, 3))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def expected_nearest_on_sphere(m: int) -> float:
    """E[distance from a uniform point on the unit sphere to the nearest of m uniform points].

    The points within chord distance t of a point cover a cap of area pi t^2 (of 4 pi), so
    P(d > t) = (1 - t^2 / 4)^m and E[d] = 2 int_0^1 (1 - u^2)^m du = sqrt(pi) m! / Gamma(m + 3/2).
    """
    return math.exp(0.5 * math.log(math.pi) + math.lgamma(m + 1) - math.lgamma(m + 1.5))


def test_precision_of_a_perfect_prediction_has_its_closed_form_and_a_prefix_inflates_it():
    """An exact surface sample scores precision E[d](M) against M ground-truth points: against a
    quarter of them it doubles (why evaluation.points defaults to every point, as DPC)."""
    rng = np.random.default_rng(5)
    prediction, truth = sphere_points(rng, 8000), sphere_points(rng, 4000)
    full = chamfer(prediction, truth)["precision"]
    prefix = chamfer(prediction, truth[:1000])["precision"]
    assert full == pytest.approx(expected_nearest_on_sphere(4000), rel=0.03)  # 0.0280
    assert prefix == pytest.approx(expected_nearest_on_sphere(1000), rel=0.03)  # 0.0560
    assert prefix / full == pytest.approx(2.0, rel=0.05)


def test_precision_and_coverage_are_asymmetric_on_a_subset():
    rng = np.random.default_rng(1)
    cloud = rng.normal(size=(200, 3))
    subset = cloud[:50]
    as_prediction = chamfer(subset, cloud)  # every predicted point is on the ground truth
    assert as_prediction["precision"] == 0.0 and as_prediction["coverage"] > 0.1
    as_truth = chamfer(cloud, subset)  # the prediction covers the ground truth entirely
    assert as_truth["coverage"] == 0.0 and as_truth["precision"] > 0.1


def test_chamfer_of_shifted_cloud_is_the_shift():
    rng = np.random.default_rng(2)
    cloud = rng.normal(size=(30, 3)) * 10.0  # points far apart, so the nearest is the shifted twin
    result = chamfer(cloud + [0.0, 0.0, 0.01], cloud)
    assert result["precision"] == pytest.approx(0.01) and result["chamfer"] == pytest.approx(0.02)


# ---- pose errors ---------------------------------------------------------------------------

def test_pose_errors_of_hand_built_rotations():
    q = axis_angle_quat([1, 2, 3], 40)
    q90 = axis_angle_quat([0, 0, 1], 90)
    pred = np.stack([q, -q, IDENTITY, axis_angle_quat([1, 2, 3], 40 + 25), -IDENTITY])
    gt = np.stack([q, q, q90, q, axis_angle_quat([0, 1, 0], 170)])
    np.testing.assert_allclose(pose_errors_deg(pred, gt), [0, 0, 90, 25, 170], atol=1e-5)


def test_pose_summary_by_hand():
    errors = [5.0, 40.0, 1.0, 29.9, 30.0, 100.0]
    summary = pose_summary(errors, threshold=30)
    assert summary["accuracy"] == pytest.approx(3 / 6)  # 30.0 itself is not below the threshold
    assert summary["median"] == 30.0  # sorted: 1, 5, 29.9, 30, 40, 100; DPC takes index 6 // 2
    assert pose_summary([3.0, 1.0, 2.0])["median"] == 2.0
    with pytest.raises(ValueError):
        pose_summary([])


# ---- alignment -----------------------------------------------------------------------------

def test_average_rotation_ignores_signs_and_finds_the_middle():
    q = axis_angle_quat([0.3, -1, 0.5], 70)
    mean = average_rotation(np.stack([q, -q, q, -q, -q]))
    assert abs(np.dot(mean, q)) == pytest.approx(1.0, abs=1e-12)
    # two rotations about one axis: the average is the half-way rotation
    middle = average_rotation(np.stack([axis_angle_quat([0, 1, 0], 0), -axis_angle_quat([0, 1, 0], 60)]))
    assert abs(np.dot(middle, axis_angle_quat([0, 1, 0], 30))) == pytest.approx(1.0, abs=1e-12)
    # weights pull it towards the heavier rotation: weight 3:1 on 0 and 60 degrees ...
    weighted = average_rotation(np.stack([IDENTITY, axis_angle_quat([0, 1, 0], 60)]), weights=[3, 1])
    # ... is the top eigenvector of [[3 + c^2, c s], [c s, s^2]] in the (w, y) plane, c, s of 30 deg
    c, s = math.cos(math.radians(30)), math.sin(math.radians(30))
    _, vectors = np.linalg.eigh(np.array([[3 + c * c, c * s], [c * s, s * s]]))
    expected_angle = 2 * math.degrees(math.atan2(abs(vectors[1, -1]), abs(vectors[0, -1])))
    assert 2 * math.degrees(math.acos(weighted[0])) == pytest.approx(expected_angle, abs=1e-9)
    assert expected_angle < 30


def test_icp_converges_from_a_20_degree_perturbation():
    rng = np.random.default_rng(3)
    src = lumpy_cloud(rng, 800)
    R_true = rodrigues(*random_axis_angle(rng))
    dst = src @ R_true.T
    start = rodrigues([1, -1, 0.5], 20) @ R_true
    R, rmse = icp(src, dst, start, threshold=0.2, iterations=50)
    off = math.degrees(math.acos(np.clip((np.trace(R.T @ R_true) - 1) / 2, -1, 1)))
    assert off < 0.1 and rmse < 1e-6
    assert abs(np.linalg.det(R) - 1) < 1e-9


def test_fit_alignment_recovers_the_frame():
    rng = np.random.default_rng(4)
    axis, angle = random_axis_angle(rng, 60, 170)
    B = rodrigues(axis, angle)  # predicted frame = B * ground-truth frame
    n_models, n_views = 5, 3
    gt_clouds = [lumpy_cloud(rng, 1500) for _ in range(n_models)]
    pred_points, pred_quats, gt_quats, model_index = [], [], [], []
    for m in range(n_models):
        for _ in range(n_views):
            gt_axis, gt_angle = random_axis_angle(rng)
            R_gt = rodrigues(gt_axis, gt_angle)
            # a sub-sample in the predicted frame, and its pose made consistent: R_pred B p = R_gt p
            pred_points.append(gt_clouds[m][rng.choice(1500, 600, replace=False)] @ B.T)
            noise = rodrigues(*random_axis_angle(rng, 0, 12))  # pose noise: ICP has to correct it
            R_pred = noise @ R_gt @ B.T
            pred_quats.append(_quat_of(R_pred))
            gt_quats.append(axis_angle_quat(gt_axis, gt_angle))
            model_index.append(m)
    A, info = fit_alignment(pred_points, np.array(pred_quats), gt_clouds, np.array(gt_quats),
                            np.array(model_index), models=3, views_per_model=2, icp_threshold=0.2,
                            icp_iterations=30)
    B_inverse = axis_angle_quat(axis, -angle)
    assert math.degrees(2 * math.acos(min(1.0, abs(np.dot(A, B_inverse))))) < 1.0
    assert len(info["views"]) == 6 and len(info["view_rmse"]) == n_models * n_views
    # the views used are, per kept model, that model's two lowest-RMSE views
    rmse = np.array(info["view_rmse"])
    for v in info["views"]:
        same_model = [i for i in range(len(model_index)) if model_index[i] == model_index[v]]
        assert rmse[v] <= sorted(rmse[same_model])[1]


def test_apply_alignment_keeps_the_image():
    rng = np.random.default_rng(5)
    points = rng.normal(size=(20, 3))
    A_axis, A_angle = random_axis_angle(rng)
    P_axis, P_angle = random_axis_angle(rng)
    aligned_points, aligned_quats = apply_alignment(axis_angle_quat(A_axis, A_angle), points,
                                                    axis_angle_quat(P_axis, P_angle)[None])
    A, R_pred = rodrigues(A_axis, A_angle), rodrigues(P_axis, P_angle)
    np.testing.assert_allclose(aligned_points, points @ A.T, atol=1e-12)
    # the aligned pose is R_pred A^T, written as a quaternion: compare as matrices
    expected = _quat_of(R_pred @ A.T)
    assert abs(np.dot(aligned_quats[0], expected)) == pytest.approx(1.0, abs=1e-9)


def _quat_of(R):
    """Quaternion of a rotation matrix via its axis and angle (Rodrigues inverted by hand)."""
    angle = math.acos(np.clip((np.trace(R) - 1) / 2, -1, 1))
    if angle < 1e-9:
        return IDENTITY.copy()
    if math.pi - angle < 1e-6:  # axis from the symmetric part when sin(angle) vanishes
        axis = np.sqrt(np.clip((np.diag(R) + 1) / 2, 0, None))
        k = int(np.argmax(axis))
        axis = (R[:, k] + np.eye(3)[k]) / 2 / axis[k]
    else:
        axis = np.array([R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1]]) / (2 * math.sin(angle))
    return axis_angle_quat(axis, math.degrees(angle))


# ---- sharp silhouettes and disagreement ----------------------------------------------------

def _centroid(mask):
    rows, cols = np.nonzero(mask)
    return cols.mean(), rows.mean()


def test_point_at_origin_lands_on_the_image_centre():
    for size in (64, 65, 128):
        mask = sharp_mask(np.zeros((1, 3)), IDENTITY, size, radius=0.02)
        # pixel radius = size * 1.875 * 0.02 / 2; the disk is symmetric about ((S-1)/2, (S-1)/2)
        assert _centroid(mask) == pytest.approx(((size - 1) / 2, (size - 1) / 2))
        r = size * 1.875 * 0.02 / 2
        assert mask.sum() == pytest.approx(math.pi * r * r, rel=0.35)


def test_point_off_axis_lands_at_the_hand_computed_column():
    S = 128
    mask = sharp_mask(np.array([[0.1, 0.0, 0.0]]), IDENTITY, S, radius=0.05)
    column, row = _centroid(mask)
    assert column == pytest.approx((S - 1) / 2 + S * 1.875 * 0.1 / 2, abs=0.25)  # = 75.5
    assert row == pytest.approx((S - 1) / 2, abs=1e-9)
    # a quarter turn about the camera's z axis maps x to y (rows grow downwards)
    turned = sharp_mask(np.array([[0.1, 0.0, 0.0]]), axis_angle_quat([0, 0, 1], 90), S, radius=0.05)
    assert _centroid(turned) == pytest.approx(((S - 1) / 2, (S - 1) / 2 + S * 1.875 * 0.1 / 2), abs=0.25)


def test_dense_sphere_projects_to_a_disk_of_the_pinhole_area():
    S, r, n = 256, 0.15, 40000
    k = np.arange(n) + 0.5  # Fibonacci sphere: evenly spread points on the surface
    z = 1 - 2 * k / n
    phi = math.pi * (1 + math.sqrt(5)) * k
    sphere = r * np.stack([np.sqrt(1 - z * z) * np.cos(phi), np.sqrt(1 - z * z) * np.sin(phi), z], axis=1)
    mask = sharp_mask(sphere, axis_angle_quat([1, 1, 0], 33), S, radius=0.0015)
    assert mask.sum() == pytest.approx(math.pi * (S * 1.875 * r / 2.0) ** 2, rel=0.05)
    assert _centroid(mask) == pytest.approx(((S - 1) / 2, (S - 1) / 2), abs=0.1)


def test_points_behind_the_camera_or_off_image_draw_nothing():
    points = np.array([[0.0, 0.0, -2.5], [5.0, 0.0, 0.0]])
    assert not sharp_mask(points, IDENTITY, 32, radius=0.05).any()


def test_xor_disagreement_by_hand():
    def xor_disagreement(pred, real):
        return mask_disagreement(pred, real, relative_to="reference")

    real = np.array([[1, 1, 0], [1, 0, 0], [0, 0, 0]], bool)  # 3 pixels
    pred = np.array([[1, 0, 0], [1, 0, 1], [0, 0, 1]], bool)  # disagrees at 3 pixels
    assert xor_disagreement(pred, real) == pytest.approx(1.0)
    assert xor_disagreement(real, real) == 0.0
    assert xor_disagreement(np.zeros_like(real), real) == 1.0
    with pytest.raises(ValueError, match="no pixel"):
        xor_disagreement(real, np.zeros_like(real))

"""The shape-and-pose core (seed 002 chapter 5, DPC): quaternions, projection, network, losses, training."""

import math
import os
import signal

import numpy as np
import pytest
import torch
import torch.nn.functional as nnf
from scipy.ndimage import binary_dilation

from shapepose import geometry
from shapepose.geometry import quaternions
from shapepose.images.dpc import pose_from_position, project_points, read_dpc
from shapepose.shape_pose import losses as L
from shapepose.shape_pose.data import ViewSet, batch_choice, prepare_view
from shapepose.shape_pose.model import Architecture, ShapePoseNet, build_model
from shapepose.shape_pose.projection import Projector, gaussian_kernel
from shapepose.shape_pose.train import load_model, train_shape_pose
from shapepose.training import SIGTERM_EXIT_STATUS
from shapepose.training.checkpoint import read_checkpoint

from helpers.configs import config_section
from helpers.data import write_tiny_dpc


def loss_settings(**changes) -> L.LossSettings:
    """config.yaml's shape_pose.losses (and projection sigma) with a test's changes."""
    sigma = config_section("shape_pose.projection")["sigma"]
    return L.LossSettings(**{**config_section("shape_pose.losses"), "sigma": tuple(sigma),
                             **changes})


def axis_angle(axis, degrees):
    """A unit quaternion by the textbook formula (w = cos(a/2), xyz = sin(a/2) axis)."""
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    half = math.radians(degrees) / 2
    return np.array([math.cos(half), *(math.sin(half) * axis)])


def rodrigues(axis, degrees):
    """The rotation matrix of the same rotation, by Rodrigues' formula."""
    k = np.asarray(axis, float) / np.linalg.norm(axis)
    K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    a = math.radians(degrees)
    return np.eye(3) + math.sin(a) * K + (1 - math.cos(a)) * K @ K


# ---------------------------------------------------------------- quaternions

@pytest.mark.parametrize("axis,deg", [([0, 0, 1], 90), ([1, 2, 3], 37), ([1, -1, 0], 170), ([0, 1, 0], 0)])
def test_quaternion_matrix_is_rodrigues(axis, deg):
    q = torch.as_tensor(axis_angle(axis, deg))
    np.testing.assert_allclose(quaternions.quaternion_to_matrix(q).numpy(), rodrigues(axis, deg), atol=1e-12)
    back = geometry.quaternion_from_matrix(rodrigues(axis, deg))
    assert geometry.angle_between(back, axis_angle(axis, deg)) < 1e-6


def test_quaternion_product_is_the_matrix_product():
    a, b = axis_angle([1, 2, 0], 50), axis_angle([0, 1, 1], -80)
    ab = quaternions.multiply(torch.as_tensor(a), torch.as_tensor(b))
    np.testing.assert_allclose(quaternions.quaternion_to_matrix(ab).numpy(),
                               rodrigues([1, 2, 0], 50) @ rodrigues([0, 1, 1], -80), atol=1e-12)
    inverse = quaternions.multiply(torch.as_tensor(a), quaternions.conjugate(torch.as_tensor(a)))
    np.testing.assert_allclose(inverse.numpy(), [1, 0, 0, 0], atol=1e-12)


def test_angle_between_treats_q_and_minus_q_as_one_pose():
    q = axis_angle([0.3, 1, -2], 64)
    assert geometry.angle_between(q, -q) == pytest.approx(0, abs=1e-6)
    r = quaternions.multiply(torch.as_tensor(axis_angle([0, 0, 1], 90)), torch.as_tensor(q)).numpy()
    assert math.degrees(geometry.angle_between(q, r)) == pytest.approx(90)
    assert math.degrees(geometry.angle_between(q, -r)) == pytest.approx(90)


def test_pose_from_position_reproduces_the_file_projection(synthetic):
    """Our pinhole with the pose from a camera file's pos = dpc.project_points with its extrinsic."""
    data = read_dpc(synthetic)
    model = data.models[0]
    points = data.load_points(model)[:50].astype(np.float64)
    for view in range(data.n_views):
        camera = data.load_camera(model, view)
        R = geometry.matrix_from_quaternion(pose_from_position(camera["position"]))
        cam = points @ R.T + [0, 0, 2]
        ours = 31.5 + 64 * 1.875 * cam[:, :2] / cam[:, 2:]
        np.testing.assert_allclose(ours, project_points(points, camera["extrinsic"], 64), atol=1e-6)


def test_pose_from_position_rejects_a_camera_at_another_distance():
    with pytest.raises(ValueError, match="distance 2.5"):
        pose_from_position([1.5, 2.0, 0.0])


# ---------------------------------------------------------------- projection

def test_single_point_silhouette_is_where_the_pinhole_puts_it():
    projector = Projector(32, kernel_size=5)
    identity = torch.tensor([[1.0, 0, 0, 0]])
    for x, y in [(0.0, 0.0), (0.1, -0.05), (-0.13, 0.2)]:
        sil = projector.render(torch.tensor([[[x, y, 0.0]]]), identity, sigma=0.0)["silhouette"][0]
        column, row = 15.5 + 32 * 1.875 * x / 2, 15.5 + 32 * 1.875 * y / 2  # by hand
        grid_r, grid_c = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
        empty = 1 - (1 - 1e-5) ** 32  # the occupancy floor of the log-space products
        w = (sil - empty).clamp_min(0)
        w = w / w.sum()
        assert float((w * grid_r).sum()) == pytest.approx(row, abs=0.05)
        assert float((w * grid_c).sum()) == pytest.approx(column, abs=0.05)
        # blurred, the peak stays there
        blurred = projector.render(torch.tensor([[[x, y, 0.0]]]), identity, sigma=1.0)["silhouette"][0]
        r, c = np.unravel_index(int(blurred.argmax()), (32, 32))
        assert abs(r - row) <= 0.5 and abs(c - column) <= 0.5


def test_a_point_behind_another_is_hidden_in_depth_and_counted_once():
    """Ray termination by hand: two cells of occupancy 1/2 on one ray."""
    projector = Projector(4, depth=4)
    occupancy = torch.zeros(1, 4, 4, 4)
    occupancy[0, 1, 2, 3] = 0.5
    occupancy[0, 3, 2, 3] = 0.5
    r, beyond = projector.ray_termination(occupancy)
    assert float(r[0, 1, 2, 3]) == pytest.approx(0.5, abs=1e-4)
    assert float(r[0, 3, 2, 3]) == pytest.approx(0.25, abs=1e-4)
    assert float(beyond[0, 2, 3]) == pytest.approx(0.25, abs=1e-4)
    depths = projector.depth_values(occupancy)
    half = math.sqrt(3) / 2
    assert float(depths[1]) == pytest.approx(2 - half + 1.5 * 2 * half / 4)
    silhouette = float(r[0, :, 2, 3].sum())
    assert silhouette == pytest.approx(0.75, abs=1e-4)


def test_blur_equals_the_separable_convolution():
    projector = Projector(12, depth=10, kernel_size=5)
    volume = torch.rand(2, 10, 12, 12, dtype=torch.float64)
    k = gaussian_kernel(1.3, 5, torch.float64)
    v = volume[:, None]
    v = nnf.conv3d(v, k.view(1, 1, -1, 1, 1), padding=(2, 0, 0))
    v = nnf.conv3d(v, k.view(1, 1, 1, -1, 1), padding=(0, 2, 0))
    v = nnf.conv3d(v, k.view(1, 1, 1, 1, -1), padding=(0, 0, 2))
    torch.testing.assert_close(projector.blur(volume, 1.3), v[:, 0])


def test_projection_is_differentiable():
    torch.manual_seed(0)
    projector = Projector(6, depth=5, kernel_size=3)
    points = (torch.rand(2, 5, 3, dtype=torch.float64) - 0.5) * 0.5
    quats = quaternions.normalize(torch.randn(2, 4, dtype=torch.float64))
    scale = torch.tensor([0.7, 0.4], dtype=torch.float64)
    points.requires_grad_(), quats.requires_grad_(), scale.requires_grad_()

    def images(p, q, s):
        out = projector.render(p, q, 0.8, s)
        return out["silhouette"], out["depth"]

    assert torch.autograd.gradcheck(images, (points, quats, scale), eps=1e-6, atol=1e-5)


def test_ground_truth_cloud_from_the_ground_truth_pose_covers_the_rendered_mask(synthetic):
    """The camera model matches the renderer of the synthetic set."""
    views = ViewSet(synthetic, "train", 64, 32)  # 32 px: 1500 points leave no holes
    projector = Projector(32, kernel_size=5)
    for index in range(len(views)):
        _, masks, poses = views.model(index)
        cloud = torch.from_numpy(views.points(index))[None].expand(len(poses), -1, -1)
        sil = projector.render(cloud, torch.from_numpy(poses), sigma=0.5)["silhouette"].numpy()
        for s, m in zip(sil, masks):
            a, b = s > 0.5, m > 0.5
            # splatting spreads a point over 2 pixels and the Gaussian adds a halo: within 1 px
            assert (a & binary_dilation(b, iterations=1)).sum() / a.sum() > 0.95
            assert (a & b).sum() / b.sum() > 0.98  # the mask is covered
            rows, cols = np.nonzero(b)
            prow, pcol = np.nonzero(a)
            assert abs(prow.mean() - rows.mean()) < 1.0 and abs(pcol.mean() - cols.mean()) < 1.0
        # a wrong pose does not fit: turning the car by 90 degrees about the camera axis
        turned = quaternions.multiply(torch.as_tensor(axis_angle([0, 0, 1], 90), dtype=torch.float32),
                                   torch.from_numpy(poses))
        sil = projector.render(cloud, turned, sigma=0.5)["silhouette"].numpy()
        inside = [((s > 0.5) & binary_dilation(m > 0.5, iterations=1)).sum() / (s > 0.5).sum()
                  for s, m in zip(sil, masks)]
        assert min(inside) < 0.85


# ---------------------------------------------------------------- data

def test_prepare_view_composites_over_white_and_keeps_the_mask():
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[2:6, 2:6] = [255, 0, 0, 255]
    rgba[0, 0] = [0, 0, 0, 128]
    image, mask = prepare_view(rgba, 8, 4)
    np.testing.assert_allclose(image[:, 3, 3], [1, -1, -1])
    np.testing.assert_allclose(image[:, 7, 7], [1, 1, 1])
    assert image[0, 0, 0] == pytest.approx((1 - 128 / 255) * 2 - 1, abs=1e-6)
    np.testing.assert_allclose(mask[1:3, 1:3], 1.0)  # box filter over 2 x 2 blocks
    assert mask[0, 0] == pytest.approx(128 / 255 / 4, abs=1e-6)


def test_batches_visit_every_model_once_per_epoch():
    seen = np.concatenate([batch_choice(10, 5, 4, 3, step, seed=3)[0] for step in range(5)])
    assert sorted(seen[:10]) == list(range(10)) and sorted(seen[10:20]) == list(range(10))
    _models, views = batch_choice(10, 5, 4, 3, 7, seed=3)
    assert views.shape == (4, 3) and all(len(set(v)) == 3 for v in views)
    assert np.array_equal(batch_choice(10, 5, 4, 3, 7, seed=3)[1], views)


# ---------------------------------------------------------------- network

TINY = Architecture(image_size=32, filters=4, encoder_pairs=2, fc=16, points=50, candidates=3,
                    pose_hidden=8, point_range=0.5, occupancy_scaling=True)


def test_network_layers_and_parameter_count_by_hand():
    net = ShapePoseNet(TINY)
    convs = [m for m in net.encoder if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 1 + 2 * 2
    assert [c.out_channels for c in convs] == [4, 8, 8, 16, 16]
    assert [c.stride[0] for c in convs] == [2, 2, 1, 2, 1]
    # by hand: convs; flat 16 x 4 x 4; shared 2 x fc; shape hidden + 3N (+1 scale); pose hidden;
    # K + 1 heads of (fc -> 8 -> 8 -> 4)
    conv = (3 * 25 * 4 + 4) + (4 * 9 * 8 + 8) + (8 * 9 * 8 + 8) + (8 * 9 * 16 + 16) + (16 * 9 * 16 + 16)
    shared = (256 * 16 + 16) + (16 * 16 + 16)
    shape = (16 * 16 + 16) + (16 * 150 + 150) + (16 + 1)
    head = (16 * 8 + 8) + (8 * 8 + 8) + (8 * 4 + 4)
    pose = (16 * 16 + 16) + 4 * head
    assert sum(p.numel() for p in net.parameters()) == conv + shared + shape + pose
    # the seed's sizes (the real config): 7 convolutions, 8 x 8 x 128 features at 128 px
    seed_arch = Architecture.from_config(config_section("shape_pose.model", "workflow/configs/cars.yaml"))
    assert seed_arch.feature_side == 8 and 1 + 2 * seed_arch.encoder_pairs == 7


def test_network_outputs():
    net = build_model(TINY, seed=5)
    out = net(torch.rand(6, 3, 32, 32) * 2 - 1)
    assert out["points"].shape == (6, 50, 3) and out["points"].abs().max() <= 0.5
    assert out["candidates"].shape == (6, 3, 4) and out["student"].shape == (6, 4)
    torch.testing.assert_close(out["candidates"].norm(dim=-1), torch.ones(6, 3))
    assert out["scale"].shape == (6,) and ((out["scale"] > 0) & (out["scale"] < 1)).all()
    again = build_model(TINY, seed=5)
    for a, b in zip(net.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="expected images"):
        net(torch.zeros(1, 3, 30, 30))


# ---------------------------------------------------------------- losses

def test_student_loss_by_hand():
    q = torch.as_tensor(axis_angle([1, 1, 0], 40))[None]
    turned = quaternions.multiply(torch.as_tensor(axis_angle([0, 0, 1], 90))[None], q)
    assert float(L.student_loss(q, q)) == pytest.approx(0, abs=1e-12)
    assert float(L.student_loss(turned, q)) == pytest.approx(1 - math.cos(math.radians(45)))
    assert float(L.student_loss(-q, q)) == pytest.approx(2)  # the seed's formula: -q is penalized
    assert float(L.student_loss(-q, q, "re_squared")) == pytest.approx(0, abs=1e-12)


def test_schedules_and_point_dropout():
    assert L.linear_schedule(0.07, 1.0, 0, 101) == pytest.approx(0.07)
    assert L.linear_schedule(0.07, 1.0, 50, 101) == pytest.approx(0.535)
    assert L.linear_schedule(0.07, 1.0, 100, 101) == pytest.approx(1.0)
    points = torch.arange(300.0).view(1, 100, 3)
    kept = L.drop_points(points, 0.25, torch.Generator().manual_seed(0))
    assert kept.shape == (1, 25, 3)
    rows = kept[0, :, 0] / 3
    assert len(set(rows.tolist())) == 25 and torch.equal(kept[0], points[0, rows.long()])


def test_reprojection_takes_the_best_candidate_and_teaches_the_student():
    """Masks rendered from known poses; candidate 1 holds the true pose, the others are wrong."""
    projector = Projector(16, kernel_size=3)
    torch.manual_seed(1)
    cloud = torch.rand(60, 3) * torch.tensor([0.8, 0.3, 0.4]) - torch.tensor([0.4, 0.15, 0.2])
    true = torch.stack([torch.as_tensor(axis_angle([0, 1, 0], a), dtype=torch.float32) for a in (0, 70, 150)])
    masks = projector.render(cloud[None].expand(3, -1, -1), true, 0.7)["silhouette"][None].detach()
    wrong = quaternions.multiply(torch.as_tensor(axis_angle([1, 0, 0], 90), dtype=torch.float32), true)
    candidates = torch.stack([wrong, true, -wrong], dim=1)[None].clone().requires_grad_()
    student = true[None].clone().requires_grad_()
    out = {"points": cloud[None, None].expand(1, 3, -1, -1), "candidates": candidates,
           "student": student, "scale": None}
    settings = loss_settings(sigma=(0.7, 0.7), pairing="all_pairs", student_loss="re",
                             reprojection_scale=1.0)
    terms = L.pair_losses(out, masks, projector, settings, 0.7, 1.0)
    assert terms["winner"].tolist() == [[1, 1, 1]]
    assert terms["reprojection"].item() < 1e-6 and terms["student"].item() < 1e-6
    # gradients reach only the winner: perturb the points, and only candidate 1 moves
    out["points"] = (cloud + 0.05)[None, None].expand(1, 3, -1, -1)
    terms = L.pair_losses(out, masks, projector, settings, 0.7, 1.0)
    terms["reprojection"].backward()
    grad = candidates.grad[0]
    assert grad[1:, 1].abs().sum() > 0  # the second and third views' true-pose candidates
    assert grad[:, 0].abs().sum() == 0 and grad[:, 2].abs().sum() == 0


def dpc_losses(points, candidates, student, scale, masks, projector, sigma, student_weight):
    """DPC's model_pc.py losses written out (its tensor layout, keep probability 1): the first
    view's cloud replicated over views then candidates (tf_repeat_0), the poses in image-major,
    candidate-minor order, the masks repeated over candidates; per projection the candidate with the
    smallest summed squared error; tf.nn.l2_loss of the winners' errors over BATCH * VIEWS; the
    student's sum of 1 - Re(normalise(q_R q_S^*))^2 over BATCH * VIEWS, times its weight."""
    B, W, K = candidates.shape[:3]
    G = masks.shape[-1]
    first = points[:, 0]  # pool_single_view(ids, 0)
    all_points = first.repeat_interleave(W, dim=0).repeat_interleave(K, dim=0)
    all_scales = scale[:, 0].repeat_interleave(W).repeat_interleave(K)
    poses = candidates.reshape(B * W * K, 4)
    pred = projector.render(all_points, poses, sigma, all_scales)["silhouette"]
    gt = masks.reshape(B * W, G, G).repeat_interleave(K, dim=0)
    all_loss = ((gt - pred) ** 2).sum(dim=(1, 2)).reshape(-1, K)
    winner = all_loss.argmin(dim=1)
    chosen = torch.nn.functional.one_hot(winner, K).reshape(-1, 1, 1).to(pred.dtype)
    proj_loss = 0.5 * (((gt - pred) * chosen) ** 2).sum() / (B * W)
    teachers = candidates.reshape(B * W, K, 4)[torch.arange(B * W), winner].detach()
    students = student.reshape(B * W, 4)
    q_diff = quaternions.normalize(quaternions.multiply(teachers, quaternions.conjugate(students)))
    student_loss = (1.0 - q_diff[:, 0] ** 2).sum() / (B * W)
    return proj_loss, student_loss, proj_loss + student_weight * student_loss, winner


def test_first_view_pairing_is_dpcs_code():
    torch.manual_seed(2)
    projector = Projector(12, kernel_size=3)
    B, W, K = 2, 3, 2
    points = (torch.rand(B, W, 40, 3) - 0.5) * 0.6
    candidates = quaternions.normalize(torch.randn(B, W, K, 4))
    student = quaternions.normalize(torch.randn(B, W, 4))
    scale = torch.rand(B, W) * 0.5 + 0.5
    masks = (torch.rand(B, W, 12, 12) > 0.6).float()
    out = {"points": points, "candidates": candidates, "student": student, "scale": scale}
    settings = loss_settings(sigma=(0.8, 0.8), pairing="first_view", student_loss="re_squared",
                             reprojection_scale=0.5, student_weight=20.0)
    ours = L.pair_losses(out, masks, projector, settings, 0.8, 1.0)
    proj, stud, total, winner = dpc_losses(points, candidates, student, scale, masks, projector, 0.8, 20.0)
    assert ours["winner"].flatten().tolist() == winner.tolist()
    torch.testing.assert_close(ours["reprojection"], proj)
    torch.testing.assert_close(ours["student"], stud)
    torch.testing.assert_close(ours["total"], total)


@pytest.mark.parametrize("pairing, scored", [("all_pairs", [False, True, True]),
                                             ("first_view", [True, True, True])])
def test_which_views_poses_get_a_gradient(pairing, scored):
    torch.manual_seed(3)
    projector = Projector(12, kernel_size=3)
    candidates = quaternions.normalize(torch.randn(1, 3, 2, 4)).requires_grad_()
    out = {"points": (torch.rand(1, 3, 40, 3) - 0.5) * 0.6, "candidates": candidates,
           "student": quaternions.normalize(torch.randn(1, 3, 4)), "scale": None}
    masks = (torch.rand(1, 3, 12, 12) > 0.6).float()
    settings = loss_settings(sigma=(0.8, 0.8), pairing=pairing)
    L.pair_losses(out, masks, projector, settings, 0.8, 1.0)["reprojection"].backward()
    got = [bool(candidates.grad[0, v].abs().sum() > 0) for v in range(3)]
    assert got == scored


@pytest.mark.parametrize("kind, settles", [("re_squared", True), ("re", False)])
def test_student_follows_a_teacher_whose_sign_flips(kind, settles):
    """Quaternion regressors give q or -q for one rotation: DPC's 1 - Re^2 learns the rotation,
    the seed's 1 - Re sees the two signs pull in opposite directions and stays off."""
    teacher = torch.as_tensor(axis_angle([1, -2, 0.5], 110), dtype=torch.float64)
    flips = torch.Generator().manual_seed(0)
    student = torch.nn.Parameter(torch.as_tensor(axis_angle([0, 1, 1], -60), dtype=torch.float64))
    optimizer = torch.optim.Adam([student], lr=0.01)
    for _ in range(600):
        signs = torch.where(torch.rand(16, generator=flips, dtype=torch.float64) < 0.5, -1.0, 1.0)
        loss = L.student_loss(student.expand(16, 4), signs[:, None] * teacher, kind).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    error = math.degrees(geometry.angle_between(student.detach().numpy(), teacher.numpy()))
    assert (error < 1.0) if settles else (error > 30.0)


def test_weight_decay_is_dpcs_regularization_of_the_weights_only():
    """Adam on L with our optimizer = plain Adam on L + wd * sum over kernels and weight matrices
    of tf.nn.l2_loss(w) = sum(w^2) / 2 (DPC's regularization_loss; biases excluded)."""
    from shapepose.shape_pose.train import make_optimizer

    arch = Architecture(image_size=16, filters=2, encoder_pairs=1, fc=8, points=5, candidates=2,
                        pose_hidden=4, point_range=0.5, occupancy_scaling=True)
    ours, reference = build_model(arch, 0), build_model(arch, 0)
    for p in ours.parameters():  # non-zero biases, so that decaying them would show
        p.data.add_(0.1)
    reference.load_state_dict(ours.state_dict())
    wd = 0.05
    opt_ours = make_optimizer(ours, 1e-2, wd)
    opt_ref = torch.optim.Adam(reference.parameters(), lr=1e-2)
    images = torch.rand(2, 3, 16, 16) * 2 - 1
    for _ in range(3):
        for net, opt, reg in ((ours, opt_ours, 0.0), (reference, opt_ref, wd)):
            loss = net(images)["points"].square().mean()
            for name, p in net.named_parameters():
                if name.endswith("weight"):
                    loss = loss + reg * p.square().sum() / 2
            opt.zero_grad()
            loss.backward()
            opt.step()
    for (name, a), b in zip(ours.state_dict().items(), reference.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)
    biases = [p for name, p in ours.named_parameters() if name.endswith("bias")]
    assert {id(p) for p in opt_ours.param_groups[1]["params"]} == {id(p) for p in biases}


# ---------------------------------------------------------------- training

@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """Its own set, not the shared tiny_dpc: the learning test below was measured on this one."""
    return write_tiny_dpc(tmp_path_factory.mktemp("sp_synthetic"), seed=11, models=12, views=4,
                          image_size=64, gt_points=1500, truck_fraction=0.0)

MODEL = {"image_size": 32, "filters": 8, "encoder_pairs": 2, "fc": 64, "points": 300,
         "candidates": 2, "pose_hidden": 16, "point_range": 0.5, "occupancy_scaling": True}
PROJECTION = {"grid": 24, "sigma": [1.0, 0.5], "kernel_size": 5}
LOSSES = {"student_weight": 20, "student_loss": "re_squared", "pairing": "first_view",
          "reprojection_scale": 0.5, "point_keep": [0.3, 1.0]}


def training(steps, **over):
    return config_section("shape_pose.training", **{
        "steps": steps, "models_per_batch": 2, "views_per_model": 3, "lr": 0.001,
        "weight_decay": 0, "checkpoint_every": 3, "validate_every": 3, "log_every": 2,
        "val_models": 2, **over})


def run(root, synthetic, steps, **over):
    return train_shape_pose(data=str(synthetic), out=str(root / "model.pt"),
                            losses_csv=str(root / "losses.csv"), checkpoint_dir=str(root / "ck"),
                            model=MODEL, projection=PROJECTION, losses=LOSSES,
                            training=training(steps, **over), device="cpu", seed=4)


def test_resume_after_sigterm_is_exact(tmp_path, synthetic, monkeypatch):
    run(tmp_path / "straight", synthetic, 6)
    original, calls = L.pair_losses, []

    def losses_then_sigterm(*args, **kwargs):
        calls.append(1)
        if len(calls) == 4:  # steps 0-2 make calls 1-3; call 4 is the validation after step 3
            os.kill(os.getpid(), signal.SIGTERM)
        return original(*args, **kwargs)

    import shapepose.shape_pose.train as train_module
    monkeypatch.setattr(train_module, "pair_losses", losses_then_sigterm)
    with pytest.raises(SystemExit) as stopped:
        run(tmp_path / "resumed", synthetic, 6)
    assert stopped.value.code == SIGTERM_EXIT_STATUS
    monkeypatch.undo()
    assert [p.name for p in (tmp_path / "resumed" / "ck").glob("step_*.pt")] == ["step_00000003.pt"]
    extra = run(tmp_path / "resumed", synthetic, 6)
    assert extra["summary"]["resumed_from"] == 3
    a = load_model(tmp_path / "straight" / "model.pt")
    b = load_model(tmp_path / "resumed" / "model.pt")
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(x, y), name
    steps = [read_checkpoint(tmp_path / r / "ck" / "best.pt")["step"] for r in ("straight", "resumed")]
    assert steps[0] == steps[1]


def test_untrained_model_is_the_step_zero_network(tmp_path, synthetic):
    run(tmp_path, synthetic, 2)
    untrained = load_model(tmp_path / "model.pt", untrained=True)
    fresh = build_model(Architecture(**MODEL), seed=4)
    for x, y in zip(untrained.state_dict().values(), fresh.state_dict().values()):
        assert torch.equal(x, y)
    trained = load_model(tmp_path / "model.pt")
    assert any(not torch.equal(x, y) for x, y in zip(trained.state_dict().values(),
                                                     fresh.state_dict().values()))


def test_a_few_hundred_steps_learn_shape_and_beat_the_untrained_network(tmp_path, synthetic):
    """Training lowers the reprojection loss, and the trained cloud is closer to the truth."""
    import pandas as pd

    from shapepose.shape_pose.evaluate import evaluate_net

    steps = 300
    run(tmp_path, synthetic, steps, checkpoint_every=100, validate_every=100, log_every=50,
        models_per_batch=3)
    history = pd.read_csv(tmp_path / "losses.csv")
    first, last = history["reprojection"][:30].mean(), history["reprojection"][-30:].mean()
    assert last < 0.6 * first
    evaluation = {"points": 1000, "accuracy_threshold": 30,
                  "alignment": {"models": 15, "views_per_model": 2, "icp_threshold": 0.2,
                                "icp_iterations": 20, "fit_models": None, "starts": True,
                                "consensus_deg": 30}}
    align = ViewSet(synthetic, "val", MODEL["image_size"], PROJECTION["grid"])
    test = ViewSet(synthetic, "test", MODEL["image_size"], PROJECTION["grid"])
    scores = {}
    for untrained in (True, False):
        net = load_model(tmp_path / "model.pt", untrained=untrained)
        scores[untrained] = evaluate_net(net, align_views=align, test_views=test,
                                         evaluation=evaluation, device="cpu")[1]
    assert scores[False]["chamfer"] < 0.8 * scores[True]["chamfer"]
    assert scores[False]["coverage"] < scores[True]["coverage"]

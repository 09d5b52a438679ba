"""Pose2Mesh's metrics, cameras, coarsening, Chebyshev convolution and losses against independent
definitions: closed forms, scipy, dense matrices and the release's formulas written out."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from scipy.linalg import orthogonal_procrustes
from scipy.spatial import procrustes
from scipy.spatial.transform import Rotation

from shapepose.bodies.coarse import load_coarse_template
from shapepose.pose2mesh import graph
from shapepose.pose2mesh.cameras import cam2pixel, h36m_camera, world2cam
from shapepose.pose2mesh.joints import EVAL_JOINTS, FLIP_PAIRS, SKELETON
from shapepose.pose2mesh.losses import LossConfig, edge_loss, masked_l1, meshnet_losses, normal_loss
from shapepose.pose2mesh.metrics import mpjpe, mpvpe, pa_mpjpe, similarity_align
from shapepose.pose2mesh.model import ChebConv, MeshNet, block_widths, chebyshev_basis
from shapepose.render.camera import Camera

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _poses(n=20, seed=0):
    return np.random.default_rng(seed).normal(0, 300, (n, 17, 3))


# ---- metrics ----------------------------------------------------------------------------------

def test_pa_mpjpe_is_zero_for_a_similarity_transform_of_the_truth():
    rng = np.random.default_rng(1)
    true = _poses()
    pred = np.stack([rng.uniform(0.5, 2) * t @ Rotation.random(random_state=i).as_matrix().T
                     + rng.normal(0, 500, 3) for i, t in enumerate(true)])
    assert np.allclose(pa_mpjpe(pred, true), 0, atol=1e-6)
    assert (mpjpe(pred, true) > 1).all()


def test_mpjpe_of_a_pure_root_translation_is_zero():
    true = _poses()
    assert np.allclose(mpjpe(true + np.array([120.0, -40.0, 3000.0]), true), 0, atol=1e-9)


def test_mpjpe_by_hand_over_the_14_evaluation_joints():
    true, pred = _poses(5, 2), _poses(5, 3)
    expected = [np.mean([np.linalg.norm((p[j] - p[0]) - (t[j] - t[0])) for j in EVAL_JOINTS])
                for p, t in zip(pred, true)]
    assert np.allclose(mpjpe(pred, true), expected)
    assert len(EVAL_JOINTS) == 14 and 0 not in EVAL_JOINTS and 7 not in EVAL_JOINTS and 9 not in EVAL_JOINTS


def test_pa_mpjpe_agrees_with_scipy_procrustes_on_random_data():
    rng = np.random.default_rng(4)
    for i in range(10):
        b = rng.normal(0, 300, (17, 3))
        a = 0.8 * b @ Rotation.random(random_state=i).as_matrix().T + rng.normal(0, 60, (17, 3))
        aligned = similarity_align(a, b)
        # scipy standardizes both to unit Frobenius norm: our squared error is ||B_c||^2 * disparity
        _, _, disparity = procrustes(b, a)
        bc = b - b.mean(0)
        assert np.isclose(((aligned - b) ** 2).sum(), (bc ** 2).sum() * disparity, rtol=1e-8)
        # the rotation is scipy's orthogonal Procrustes solution (no reflection is optimal here)
        r, _ = orthogonal_procrustes(a - a.mean(0), bc)
        assert np.linalg.det(r) > 0
        scale = np.trace((a - a.mean(0)) @ r @ bc.T) / ((a - a.mean(0)) ** 2).sum()
        assert np.allclose(aligned, scale * (a - a.mean(0)) @ r + b.mean(0))


def test_similarity_alignment_excludes_reflections():
    b = np.random.default_rng(5).normal(0, 1, (17, 3))
    mirrored = b * np.array([-1.0, 1.0, 1.0])
    aligned = similarity_align(mirrored, b)
    rotation = np.linalg.lstsq(mirrored - mirrored.mean(0), aligned - b.mean(0), rcond=None)[0]
    assert np.linalg.det(rotation) > 0  # a proper rotation (times a positive scale)
    assert ((aligned - b) ** 2).sum() > 1e-3  # a mirror image cannot be matched exactly


def test_pa_mpjpe_matches_the_released_rigid_align_written_out():
    true, pred = _poses(6, 6), _poses(6, 7)

    def rigid_align(A, B):  # lib/coord_utils.py's rigid_transform_3D + rigid_align, restated
        ca, cb = A.mean(0), B.mean(0)
        H = (A - ca).T @ (B - cb) / len(A)
        U, s, V = np.linalg.svd(H)
        R = V.T @ U.T
        if np.linalg.det(R) < 0:
            s[-1] = -s[-1]
            V[2] = -V[2]
            R = V.T @ U.T
        c = s.sum() / np.var(A, axis=0).sum()
        t = -c * R @ ca + cb
        return (c * R @ A.T).T + t

    expected = []
    for p, t in zip(pred, true):
        p, t = (p - p[0])[list(EVAL_JOINTS)], (t - t[0])[list(EVAL_JOINTS)]
        expected.append(np.linalg.norm(rigid_align(p, t) - t, axis=1).mean())
    assert np.allclose(pa_mpjpe(pred, true), expected)


def test_mpvpe_is_the_mean_vertex_distance_after_root_alignment():
    rng = np.random.default_rng(8)
    true = rng.normal(0, 1, (3, 50, 3))
    shift = rng.normal(0, 1, (3, 1, 3))
    assert np.allclose(mpvpe(true + shift, true, shift[:, 0], np.zeros((3, 3))), 0)
    offset = np.zeros((3, 50, 3))
    offset[..., 2] = 2.0
    assert np.allclose(mpvpe(true + offset, true, np.zeros((3, 3)), np.zeros((3, 3))), 2.0)


# ---- cameras ----------------------------------------------------------------------------------

@pytest.mark.parametrize("azimuth,elevation", [(45, 10), (135, 5), (250, 15), (0, -5)])
def test_world_camera_pixel_with_the_written_camera_reproduces_the_renderer(azimuth, elevation):
    camera = Camera(azimuth=azimuth, elevation=elevation, distance=5.0, fov_y=47.0)
    entry = h36m_camera(camera, 1000, 800)
    joints_m = np.random.default_rng(azimuth).uniform([-0.5, 0.0, -0.5], [0.5, 1.8, 0.5], (17, 3))
    cam = world2cam(1000.0 * joints_m, np.array(entry["R"]), np.array(entry["t"]))
    assert (cam[:, 2] > 0).all()  # OpenCV: in front of the camera is +z
    assert np.allclose(cam2pixel(cam, entry["f"], entry["c"]), camera.project(joints_m, 1000, 800),
                       atol=1e-9)
    assert np.allclose(np.array(entry["R"]) @ np.array(entry["R"]).T, np.eye(3))


# ---- coarsening and graph convolution ----------------------------------------------------------

@pytest.fixture(scope="module")
def coarse_graphs():
    template = load_coarse_template()
    return graph.coarsen(graph.mesh_adjacency(template.faces, len(template.vertices)), 5), template


def test_coarsening_is_a_binary_tree_with_isolated_fake_nodes(coarse_graphs):
    graphs, template = coarse_graphs
    sizes = graphs.sizes
    assert all(sizes[l] == 2 * sizes[l + 1] for l in range(len(sizes) - 1))
    for level in range(len(sizes) - 1):
        fine, coarse = graphs.orders[level], graphs.orders[level + 1]
        n_fine, n_coarse = graphs.n_real[level], graphs.n_real[level + 1]
        adj = graphs.adjacencies[level].tocsr()
        fake = fine >= n_fine
        assert (np.diff(adj.indptr)[fake] == 0).all()  # no edges at a fake node
        assert adj[:, np.nonzero(fake)[0]].nnz == 0
        # the children 2i, 2i + 1 of a real coarse node i are the nodes matched into it
        cluster = graph.heavy_edge_matching(_original(graphs, level))
        for i, parent in enumerate(coarse):
            kids = [c for c in fine[[2 * i, 2 * i + 1]] if c < n_fine]
            if parent >= n_coarse:
                assert not kids
            else:
                assert kids and all(cluster[k] == parent for k in kids)
                assert sorted(kids) == sorted(np.nonzero(cluster == parent)[0])
    real = graphs.orders[0] < len(template.vertices)
    assert sorted(graphs.orders[0][graphs.reverse]) == list(range(len(template.vertices)))
    assert set(graphs.reverse) == set(np.nonzero(real)[0])


def _original(graphs, level):
    """Level `level`'s graph in its original numbering, from the permuted one."""
    order = graphs.orders[level]
    real = np.nonzero(order < graphs.n_real[level])[0]
    adj = graphs.adjacencies[level].tocsr()[real][:, real]
    out = sp.lil_matrix((graphs.n_real[level],) * 2)
    idx = order[real]
    out[np.ix_(idx, idx)] = adj.toarray()
    return out.tocsr()


def test_edges_of_the_coarse_graph_join_the_clusters_of_fine_edges(coarse_graphs):
    graphs, _ = coarse_graphs
    for level in range(len(graphs.sizes) - 1):
        fine = graphs.adjacencies[level].tocoo()
        coarse = graphs.adjacencies[level + 1].tocsr()
        for i, j in zip(fine.row[:300] // 2, fine.col[:300] // 2):
            assert coarse[i, j] > 0  # parents of an edge's ends are joined (or the same node)


def test_chebyshev_basis_equals_dense_polynomials_of_the_laplacian():
    rng = np.random.default_rng(0)
    adj = sp.random(7, 7, density=0.5, random_state=1)
    adj = ((adj + adj.T) > 0).astype(float)
    adj.setdiag(0)
    lap = graph.rescale(graph.normalized_laplacian(adj), "corrected").toarray()
    x = rng.normal(size=(7, 3, 4))  # (V, B, F)
    T = [np.eye(7), lap]
    for _ in range(2, 4):
        T.append(2 * lap @ T[-1] - T[-2])
    expected = np.concatenate([np.einsum("uv,vbf->ubf", Tk, x) for Tk in T], axis=2)
    got = chebyshev_basis(torch.tensor(x, dtype=torch.float64),
                          torch.tensor(lap).to_sparse(), 4).numpy()
    assert np.allclose(got, expected)
    conv = ChebConv(4, 5, 4, batch_norm=False).double()
    out = conv(torch.tensor(x), torch.tensor(lap).to_sparse()).detach().numpy()
    w, b = conv.linear.weight.detach().numpy(), conv.linear.bias.detach().numpy()
    assert np.allclose(out, expected @ w.T + b)


def test_rescaled_spectra_corrected_and_faithful(coarse_graphs):
    template = load_coarse_template()
    for mode, low, high in (("corrected", -1.0, 1.0), ("faithful", -1.0, -0.5)):
        laps, graphs = graph.network_laplacians(template.faces, len(template.vertices), 17, SKELETON,
                                                FLIP_PAIRS, 5, mode)
        assert [l.shape[0] for l in laps] == graphs.sizes[:4] + [17]
        for lap in laps[:-1]:
            eig = np.linalg.eigvalsh(lap.toarray())
            assert eig.min() >= low - 1e-9 and eig.max() <= high + 1e-9
            assert np.isclose(eig.max(), high, atol=1e-6)
        joint = np.linalg.eigvalsh(laps[-1].toarray())
        if mode == "corrected":
            assert joint.min() >= -1 - 1e-9 and np.isclose(joint.max(), 1.0)
        else:  # the release leaves the joint graph's normalized Laplacian as it is: [0, lmax]
            assert joint.min() >= -1e-9 and joint.max() > 1.0


def test_meshnet_widths_are_the_released_ones_at_width_256():
    assert block_widths(5, 3, 256, 7) == [
        (5, 32, 64, 64), (64, 128, 256), (256, 256, 256), (256, 256, 256), (256, 256, 256),
        (256, 256, 256), (256, 128, 128), (128, 128, 128), (128, 128, 128), (128, 64, 3)]


def test_meshnet_maps_joints_to_every_mesh_vertex(coarse_graphs):
    template = load_coarse_template()
    laps, graphs = graph.network_laplacians(template.faces, 752, 17, SKELETON, FLIP_PAIRS, 5,
                                            "corrected")
    net = MeshNet(laps, graphs.reverse, 5, 16, 3).eval()
    out = net(torch.randn(2, 17, 5))
    assert out.shape == (2, 752, 3) and torch.isfinite(out).all()


# ---- losses: the release's formulas, written out per face ---------------------------------------

def _faces_and_meshes(seed=0):
    rng = np.random.default_rng(seed)
    faces = np.array([[0, 1, 2], [0, 2, 3], [1, 3, 4], [2, 4, 5]])
    pred, true = rng.normal(size=(2, 6, 3)), rng.normal(size=(2, 6, 3))
    return faces, pred, true


def test_normal_loss_by_hand():
    faces, pred, true = _faces_and_meshes()

    def unit(v):
        return v / np.linalg.norm(v)

    cosines = []
    for b in range(2):
        for f in faces:
            p, t = pred[b][f], true[b][f]
            n = unit(np.cross(unit(t[1] - t[0]), unit(t[2] - t[0])))
            cosines += [abs(unit(p[1] - p[0]) @ n), abs(unit(p[2] - p[0]) @ n), abs(unit(p[2] - p[1]) @ n)]
    got = normal_loss(torch.tensor(pred), torch.tensor(true), torch.tensor(faces))
    assert np.isclose(float(got), np.mean(cosines))


def test_edge_loss_by_hand():
    faces, pred, true = _faces_and_meshes(1)
    diffs = [abs(np.linalg.norm(pred[b][i] - pred[b][j]) - np.linalg.norm(true[b][i] - true[b][j]))
             for b in range(2) for f in faces for i, j in ((f[0], f[1]), (f[0], f[2]), (f[1], f[2]))]
    got = edge_loss(torch.tensor(pred), torch.tensor(true), torch.tensor(faces))
    assert np.isclose(float(got), np.mean(diffs))


def test_meshnet_losses_weights_and_edge_switch():
    faces, pred, true = _faces_and_meshes(2)
    rng = np.random.default_rng(3)
    regressor = rng.uniform(size=(17, 6))
    regressor /= regressor.sum(1, keepdims=True)
    joints, lifted = rng.normal(0, 100, (2, 17, 3)), rng.normal(0, 100, (2, 17, 3))
    valid = np.array([1.0, 0.0])
    config = LossConfig(normal_weight=0.1, joint_weight=1e-3, edge_weight=20, edge_start=3)
    args = dict(mesh=torch.tensor(pred), lifted=torch.tensor(lifted), true_mesh=torch.tensor(true),
                true_joints=torch.tensor(joints), mesh_valid=torch.tensor(valid),
                regressor=torch.tensor(regressor), faces=torch.tensor(faces), config=config)
    early, late = meshnet_losses(epoch=2, **args), meshnet_losses(epoch=3, **args)
    vertex = np.abs(pred * valid[:, None, None] - true * valid[:, None, None]).mean()
    assert np.isclose(float(early["vertex"]), vertex)
    regressed = np.einsum("jv,bvc->bjc", regressor, pred * 1000)
    assert np.isclose(float(early["mesh_joint"]), 1e-3 * np.abs(regressed - joints).mean())
    assert np.isclose(float(early["lifted_joint"]), 1e-3 * np.abs(lifted - joints).mean())
    assert float(early["edge"]) == 0.0 and float(late["edge"]) > 0
    assert np.isclose(float(late["edge"]), 20 * float(edge_loss(args["mesh"], args["true_mesh"],
                                                                  args["faces"])))
    for terms in (early, late):
        assert np.isclose(float(terms["total"]), sum(float(v) for k, v in terms.items() if k != "total"))
    assert float(masked_l1(torch.ones(3, 2), torch.zeros(3, 2))) == 1.0


def test_config_sections_read_config_yaml_and_the_dataclass_has_no_defaults():
    import dataclasses
    from pathlib import Path

    import yaml

    from shapepose.config import section
    from shapepose.training import TrainConfig

    config = yaml.safe_load((Path(__file__).resolve().parents[2] / "config.yaml").read_text())["pose2mesh"]
    losses = section(LossConfig, config["losses"], where="pose2mesh.losses")
    assert (losses.normal_weight, losses.joint_weight, losses.edge_weight) == (0.1, 0.001, 20)
    assert all(f.default is dataclasses.MISSING for f in dataclasses.fields(LossConfig))
    for stage in ("posenet", "meshnet"):
        assert TrainConfig.from_section(config[stage]["training"]).keep_last == 1
    assert config["defaults"] == {"optimizer": "rmsprop", "lr": 0.001, "rescaling": "corrected"}


# ---- SMPL (real data): linear blend skinning written out per vertex -----------------------------

def _toy_smpl(tmp_path, seed=0):
    rng = np.random.default_rng(seed)
    n_v, n_j = 12, 3
    weights = rng.uniform(size=(n_v, n_j))
    weights /= weights.sum(1, keepdims=True)
    regressor = rng.uniform(size=(n_j, n_v))
    regressor /= regressor.sum(1, keepdims=True)
    arrays = {"v_template": rng.normal(size=(n_v, 3)), "shapedirs": rng.normal(0, 0.1, (n_v, 3, 4)),
              "posedirs": rng.normal(0, 0.01, (n_v, 3, 9 * (n_j - 1))), "J_regressor": regressor,
              "weights": weights, "kintree_table": np.array([[4294967295, 0, 1], [0, 1, 2]]),
              "f": np.array([[0, 1, 2], [2, 3, 4]])}
    np.savez(tmp_path / "smpl.npz", **arrays)
    return arrays


def test_smpl_skinning_by_hand(tmp_path):
    from shapepose.pose2mesh.smpl import load_smpl

    a = _toy_smpl(tmp_path)
    model = load_smpl(tmp_path / "smpl.npz")
    rng = np.random.default_rng(1)
    pose, beta, trans = rng.normal(0, 0.5, (1, 9)), rng.normal(0, 1, (1, 4)), rng.normal(size=(1, 3))
    got = model.vertices(pose, beta, trans)[0]
    v_shaped = a["v_template"] + a["shapedirs"] @ beta[0]
    J = a["J_regressor"] @ v_shaped
    R = [Rotation.from_rotvec(pose[0, 3 * j:3 * j + 3]).as_matrix() for j in range(3)]
    v_posed = v_shaped + a["posedirs"] @ np.concatenate([(r - np.eye(3)).ravel() for r in R[1:]])
    parents = [-1, 0, 1]
    G = []
    for j in range(3):  # world rotation and the world position of joint j
        if parents[j] < 0:
            G.append((R[0], J[0]))
        else:
            Rp, tp = G[parents[j]]
            G.append((Rp @ R[j], tp + Rp @ (J[j] - J[parents[j]])))
    expected = np.stack([sum(a["weights"][v, j] * (G[j][0] @ (v_posed[v] - J[j]) + G[j][1])
                             for j in range(3)) for v in range(12)]) + trans[0]
    assert np.allclose(got, expected)
    assert np.allclose(model.vertices(np.zeros((1, 9)), np.zeros((1, 4)), np.zeros((1, 3)))[0],
                       a["v_template"])
    far = beta.copy()
    far[0, 0] = 3.5  # the release replaces such a fit's shape by the mean shape
    assert np.allclose(model.vertices(np.zeros((1, 9)), far, np.zeros((1, 3)))[0], a["v_template"])


def test_smpl_file_without_an_array_is_named(tmp_path):
    from shapepose.errors import InputError
    from shapepose.pose2mesh.smpl import load_smpl

    np.savez(tmp_path / "bad.npz", v_template=np.zeros((3, 3)))
    with pytest.raises(InputError, match="lacks the array") as info:
        load_smpl(tmp_path / "bad.npz")
    assert info.value.path == str(tmp_path / "bad.npz")

"""Neural pose transfer (seed 000): the network's invariances, SPAdaIN and BIN against their
formulas, the losses and PMD against the authors' code written out by hand and closed forms, the
demo's exact ground truth, the loader's checks, the batches, and a short training that beats both
no-learning answers on held-out identities (the table: test_pose_transfer_table.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from shapepose.bodies import Body, sample_identity
from shapepose.bodies.coarse import load_coarse_template
from shapepose.bodies.model import Identity
from shapepose.bodies.skeleton import N_JOINTS
from shapepose.errors import InputError
from shapepose.pose_transfer.demo import demo_pose, make_demo_pose_pairs, posed
from shapepose.pose_transfer.losses import (edge_length_loss, edge_loss, pose_transfer_loss,
                                            reconstruction_loss)
from shapepose.pose_transfer.meshes import (MeshStore, mesh_name, mesh_path, read_obj,
                                            read_triples, write_obj)
from shapepose.pose_transfer.metrics import mean_vertex_distance, pmd, vertex_rms_mm
from shapepose.pose_transfer.model import (Architecture, BatchInstanceNorm1d, PoseTransferNet,
                                           SPAdaIN)
from shapepose.pose_transfer.train import TrainingMeshes, draw_batch, predict
from shapepose.seeding import derive_rng

from helpers.configs import config_section

pytestmark = pytest.mark.usefixtures("one_torch_thread")

MOTIONS = ["jumping_jacks", "punching", "knees"]
DEMO = {"identities": {"train": 2, "val": 2, "test": 2}, "seen_poses": 3, "unseen_poses": 1,
        "motions": MOTIONS, "val_pairs": 3, "test_pairs": 4}


def arch(**changes) -> Architecture:
    base = {"width": 16, "pose_pooling": "none", "normalization": "instance",
            "first_block_normalized": True}
    return Architecture(**{**base, **changes})


def net_of(seed=0, **changes) -> PoseTransferNet:
    torch.manual_seed(seed)
    net = PoseTransferNet(arch(**changes)).double().eval()
    with torch.no_grad():  # larger weights than the authors' 0.02, so every layer matters
        for p in net.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return net


# ---- the network ---------------------------------------------------------------------------------

def test_maxpool_ignores_pose_order_and_permutes_with_the_identity():
    net = net_of(pose_pooling="max", first_block_normalized=False)
    g = torch.Generator().manual_seed(1)
    pose, identity = torch.randn(2, 3, 40, generator=g, dtype=torch.float64), \
        torch.randn(2, 3, 40, generator=g, dtype=torch.float64)
    out = net(pose, identity)
    shuffled = torch.randperm(40, generator=g)
    torch.testing.assert_close(net(pose[:, :, shuffled], identity), out, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(net(pose, identity[:, :, shuffled]), out[:, shuffled], rtol=1e-10, atol=1e-12)
    # any pose vertex count: the pooled feature is repeated at the identity's points
    assert net(pose[:, :, :25], identity).shape == (2, 40, 3)


def test_original_variant_needs_equal_counts_and_permutes_with_both_inputs_together():
    net = net_of()
    pose, identity = torch.randn(1, 3, 30, dtype=torch.float64), torch.randn(1, 3, 30, dtype=torch.float64)
    order = torch.randperm(30)
    torch.testing.assert_close(net(pose[:, :, order], identity[:, :, order]),
                               net(pose, identity)[:, order], rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="as many pose points as identity points"):
        net(pose[:, :, :20], identity)


def test_layer_sizes_follow_the_authors_code_at_width_1024():
    net = PoseTransferNet(arch(width=1024))
    encoder = [(c.in_channels, c.out_channels) for c in net.encoder.convs]
    assert encoder == [(3, 64), (64, 128), (128, 1024)]
    d = net.decoder
    assert (d.conv1.in_channels, d.conv1.out_channels) == (1027, 1027)
    assert (d.conv2.out_channels, d.conv3.out_channels, d.conv4.out_channels) == (513, 256, 3)
    assert d.block1.spadain1.gamma.in_channels == 3 and d.block2.conv_skip.in_channels == 513
    # the maxpool model's first block has no normalization, the others instance norm
    pooled = PoseTransferNet(arch(width=64, pose_pooling="max", first_block_normalized=False))
    assert isinstance(pooled.decoder.block1.spadain1.norm, torch.nn.Identity)
    assert isinstance(pooled.decoder.block2.spadain1.norm, torch.nn.InstanceNorm1d)
    assert not pooled.decoder.block2.spadain1.norm.affine


def test_spadain_equals_its_formula():
    torch.manual_seed(3)
    layer = SPAdaIN(4, "instance").double()
    x, m = torch.randn(2, 4, 5, dtype=torch.float64), torch.randn(2, 3, 5, dtype=torch.float64)
    xn, mn = x.numpy(), m.numpy()
    normalized = (xn - xn.mean(axis=2, keepdims=True)) / np.sqrt(xn.var(axis=2, keepdims=True) + 1e-5)
    wg, bg = layer.gamma.weight.detach().numpy()[:, :, 0], layer.gamma.bias.detach().numpy()
    wb, bb = layer.beta.weight.detach().numpy()[:, :, 0], layer.beta.bias.detach().numpy()
    gamma = np.einsum("cd,bdn->bcn", wg, mn) + bg[None, :, None]
    beta = np.einsum("cd,bdn->bcn", wb, mn) + bb[None, :, None]
    np.testing.assert_allclose(layer(x, m).detach().numpy(), gamma * normalized + beta, rtol=1e-10)
    plain = SPAdaIN(4, None).double()
    plain.load_state_dict(layer.state_dict())
    np.testing.assert_allclose(plain(x, m).detach().numpy(), gamma * xn + beta, rtol=1e-10)


def test_batch_instance_norm_mixes_batch_and_instance_statistics_by_its_gate():
    x = torch.randn(3, 4, 6, dtype=torch.float64)
    xn = x.numpy()
    bn = (xn - xn.mean(axis=(0, 2), keepdims=True)) / np.sqrt(xn.var(axis=(0, 2), keepdims=True) + 1e-5)
    inn = (xn - xn.mean(axis=2, keepdims=True)) / np.sqrt(xn.var(axis=2, keepdims=True) + 1e-5)
    norm = BatchInstanceNorm1d(4).double().train()
    assert torch.all(norm.gate == 1)  # Nam and Kim start at batch norm
    rho = np.array([1.0, 0.0, 0.3, 0.7])
    with torch.no_grad():
        norm.gate.copy_(torch.from_numpy(rho))
    np.testing.assert_allclose(norm(x).detach().numpy(),
                               rho[None, :, None] * bn + (1 - rho[None, :, None]) * inn, rtol=1e-9)
    with torch.no_grad():
        norm.gate.copy_(torch.tensor([1.5, -0.2, 0.5, 0.5]))
    norm.clamp_gate()
    assert norm.gate.tolist() == [1.0, 0.0, 0.5, 0.5]


# ---- losses and PMD ------------------------------------------------------------------------------

def authors_edge_loss(points: np.ndarray, faces: np.ndarray, identity: np.ndarray) -> float:
    """utils.init_regul + utils.compute_score of the authors' code for one sample, in numpy."""
    a, b, c = (identity[faces[:, k]] for k in range(3))
    target = [np.sqrt(((a - b) ** 2).sum(1)), np.sqrt(((b - c) ** 2).sum(1)), np.sqrt(((a - c) ** 2).sum(1))]
    A, B, C = (points[faces[:, k]] for k in range(3))
    score = np.abs(np.sqrt(((A - B) ** 2).sum(1)) / target[0] - 1)
    score += np.abs(np.sqrt(((B - C) ** 2).sum(1)) / target[1] - 1)
    score += np.abs(np.sqrt(((A - C) ** 2).sum(1)) / target[2] - 1)
    return float(score.mean())


def test_edge_loss_of_the_scaled_identity_is_three_times_the_scale_change():
    template = load_coarse_template()
    identity = torch.from_numpy(template.vertices[None].astype(np.float64))
    faces = torch.from_numpy(template.faces[None].copy())
    for s in (0.5, 1.0, 1.25, 2.0):
        assert edge_loss(s * identity, identity, faces).item() == pytest.approx(3 * abs(s - 1), abs=1e-12)


def test_losses_match_the_authors_code_per_sample_with_permuted_faces():
    rng = np.random.default_rng(0)
    template = load_coarse_template()
    n = len(template.vertices)
    ids, preds, faces = [], [], []
    for _ in range(3):  # each sample in its own vertex order, faces renumbered as the authors' loader
        order = rng.permutation(n)
        position = np.empty(n, dtype=np.int64)
        position[order] = np.arange(n)
        ids.append(template.vertices[order])
        preds.append(template.vertices[order] + rng.normal(0, 0.01, (n, 3)))
        faces.append(position[template.faces])
    ids, preds, faces = np.stack(ids), np.stack(preds), np.stack(faces)
    expected = np.mean([authors_edge_loss(p, f, i) for p, f, i in zip(preds, faces, ids)])
    got = edge_loss(torch.from_numpy(preds), torch.from_numpy(ids), torch.from_numpy(faces))
    assert got.item() == pytest.approx(expected, rel=1e-10)
    target = preds + 0.02
    terms = pose_transfer_loss(torch.from_numpy(preds), torch.from_numpy(target),
                               torch.from_numpy(ids), torch.from_numpy(faces), 5e-4)
    assert reconstruction_loss(torch.from_numpy(preds), torch.from_numpy(target)).item() == pytest.approx(4e-4)
    assert terms["total"].item() == pytest.approx(4e-4 + 5e-4 * expected, rel=1e-10)


def test_the_texts_edge_loss_is_the_mean_summed_edge_length():
    template = load_coarse_template()
    v, f = template.vertices.astype(np.float64), template.faces
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    expected = np.mean(np.linalg.norm(a - b, axis=1) + np.linalg.norm(b - c, axis=1) + np.linalg.norm(a - c, axis=1))
    got = edge_length_loss(torch.from_numpy(2 * v[None]), torch.from_numpy(f[None].copy()))
    assert got.item() == pytest.approx(2 * expected, rel=1e-12)
    terms = pose_transfer_loss(torch.from_numpy(v[None]), torch.from_numpy(v[None]), torch.from_numpy(v[None]),
                               torch.from_numpy(f[None].copy()), 0.5, "length")
    assert terms["total"].item() == pytest.approx(0.5 * expected, rel=1e-12)
    with pytest.raises(ValueError, match="edge_loss must be one of"):
        pose_transfer_loss(*[torch.from_numpy(v[None])] * 3, torch.from_numpy(f[None].copy()), 0.5, "area")


def authors_pmd(ours: np.ndarray, gt: np.ndarray) -> float:
    """evaluate.py of the authors' code, written out."""
    def align(v):
        bbox = np.array([[np.max(v[:, 0]), np.max(v[:, 1]), np.max(v[:, 2])],
                         [np.min(v[:, 0]), np.min(v[:, 1]), np.min(v[:, 2])]])
        return v - (bbox[0] + bbox[1]) / 2
    return float(np.mean((align(ours) - align(gt)) ** 2))


def test_pmd_of_a_translation_is_zero_and_of_one_moved_vertex_is_its_share():
    v = load_coarse_template().vertices.astype(np.float64)
    assert pmd(v + [0.3, -2.0, 5.0], v) == pytest.approx(0.0, abs=1e-24)
    inner = int(np.argmin(np.linalg.norm(v - v.mean(axis=0), axis=1)))  # far from every bbox face
    d = np.array([0.01, -0.02, 0.005])
    moved = v.copy()
    moved[inner] += d
    assert pmd(moved, v) == pytest.approx(d @ d / (3 * len(v)), rel=1e-12)
    assert mean_vertex_distance(moved, v) == pytest.approx(np.sqrt(d @ d) / len(v), rel=1e-12)
    rng = np.random.default_rng(1)
    other = v + rng.normal(0, 0.02, v.shape)
    assert pmd(other, v) == pytest.approx(authors_pmd(other, v), rel=1e-12)
    assert pmd(np.stack([other, moved]), np.stack([v, v])).shape == (2,)
    assert vertex_rms_mm(1.1e-4) == pytest.approx(1000 * np.sqrt(3.3e-4))


# ---- the demo set and the loader -----------------------------------------------------------------

@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("npt_demo")
    make_demo_pose_pairs(meshes=root / "meshes", val_list=root / "val.txt",
                         seen_list=root / "seen.txt", unseen_list=root / "unseen.txt", seed=7, **DEMO)
    return root


def test_demo_ground_truth_is_the_body_model_posed(demo):
    template = load_coarse_template()
    for i, p in [(0, 0), (1, 2), (4, 3), (5, 1)]:
        sex = "mf"[i % 2]
        identity = sample_identity(derive_rng(7, "pose_transfer", "identity", i), sex)
        euler = demo_pose(7, p, MOTIONS)
        assert np.all(euler[:, 0] == 0)  # no global rotation
        expected, _ = Body(identity, template).pose(euler, np.zeros((1, 3)))
        vertices, faces = read_obj(demo / "meshes" / f"id{i}_{p}.obj")
        np.testing.assert_allclose(vertices, expected[0], atol=6e-7)
        np.testing.assert_array_equal(faces, template.faces)
    text = (demo / "meshes" / "id0_0.obj").read_text().splitlines()
    assert text[0].startswith("v ") and min(int(x) for x in text[-1].split()[1:]) >= 1  # 1-based
    assert int(max(int(x) for line in text if line.startswith("f") for x in line.split()[1:])) == len(template.vertices)


def test_demo_layout_holds_out_identities_and_unseen_poses(demo):
    names = {p.name for p in (demo / "meshes").glob("*.obj")}
    assert len(names) == 2 * 3 + 2 * 3 + 2 * 4  # train and val in seen poses, test in every pose
    assert "id0_3.obj" not in names and "id4_3.obj" in names
    seen = read_triples(demo / "seen.txt", demo / "meshes")
    unseen = read_triples(demo / "unseen.txt", demo / "meshes")
    assert len(seen) == len(unseen) == 4
    parse = lambda name: tuple(int(x) for x in name[2:-4].split("_"))  # noqa: E731
    for triple in seen + unseen:
        (a, q), (b, p), (g, r) = parse(triple.identity), parse(triple.pose), parse(triple.ground_truth)
        assert {a, b} <= {4, 5} and a != b and g == a and r == p and q != p and q < 3
    assert all(parse(t.pose)[1] == 3 for t in unseen) and all(parse(t.pose)[1] < 3 for t in seen)


def test_the_authors_plain_names_are_read_too(tmp_path):
    v, f = posed(sample_identity(np.random.default_rng(0), "m"), demo_pose(1, 0, MOTIONS))
    write_obj(tmp_path / "3_250.obj", v, f)
    assert mesh_path(tmp_path, 3, 250).name == "3_250.obj"
    with pytest.raises(InputError, match="id3_251.obj"):
        mesh_path(tmp_path, 3, 251)


def test_bad_meshes_and_lists_stop_with_one_error_naming_the_file(demo, tmp_path):
    good = demo / "meshes" / "id4_0.obj"
    vertices, faces = read_obj(good)
    store = MeshStore(demo / "meshes", max_tilt_deg=30, n_vertices=500)
    with pytest.raises(InputError, match=r"id4_0\.obj.*752 vertices, the model 500.*original variant"):
        store.vertices(good)
    bad = tmp_path / "nan.obj"
    broken = vertices.copy()
    broken[10, 1] = np.nan
    write_obj(bad, broken, faces)
    with pytest.raises(InputError, match=r"nan\.obj.*non-finite vertex coordinates \(first at vertex 11\)"):
        read_obj(bad)
    rotated = tmp_path / "rotated.obj"
    write_obj(rotated, vertices @ np.array([[1, 0, 0], [0, 0, -1], [0, 1, 0]]).T, faces)  # 90 deg about x
    with pytest.raises(InputError, match=r"rotated\.obj.*long axis is [89][0-9] degrees from the y \(up\) axis.*issue #15"):
        MeshStore(tmp_path, max_tilt_deg=30).vertices(rotated)
    listing = tmp_path / "test.txt"
    listing.write_text("id4_0.obj id5_1.obj id4_9.obj\n")
    with pytest.raises(InputError, match=r"test\.txt.*line 1: mesh id4_9\.obj does not exist"):
        read_triples(listing, demo / "meshes")
    listing.write_text("id4_0.obj id5_1.obj\n")
    with pytest.raises(InputError, match=r"test\.txt.*expected 'identity pose ground_truth'"):
        read_triples(listing, demo / "meshes")


def which_mesh(data: TrainingMeshes, vertices: np.ndarray) -> tuple[int, int]:
    """(identity, pose) of a permuted training mesh: the one with the same sorted coordinates."""
    key = np.sort(vertices, axis=0)
    found = [(i, q) for i in data.identities for q in data.poses
             if np.allclose(np.sort(data.vertices(i, q), axis=0), key, atol=1e-7)]
    assert len(found) == 1
    return found[0]


def test_batches_walk_every_identity_mesh_once_per_epoch_and_repeat_on_a_rerun(demo):
    data = TrainingMeshes(MeshStore(demo / "meshes", max_tilt_deg=30), [0, 1], [0, 1, 2])
    batch = draw_batch(data, seed=3, step=0, batch_size=3)
    again = draw_batch(data, seed=3, step=0, batch_size=3)
    for key in batch:
        np.testing.assert_array_equal(batch[key], again[key])
    epochs = []
    for first in (0, 2):  # steps 0-1 are epoch 0, steps 2-3 epoch 1 (6 meshes, batch 3)
        meshes = [which_mesh(data, v) for s in (first, first + 1)
                  for v in draw_batch(data, seed=3, step=s, batch_size=3)["identity"]]
        assert sorted(meshes) == [(i, q) for i in (0, 1) for q in (0, 1, 2)]
        epochs.append(meshes)
    assert epochs[0] != epochs[1]  # a fresh order each epoch
    # the pose meshes get their own permutation, not the identity's
    assert not np.allclose(batch["pose"][0][:5], batch["identity"][0][:5])


def test_identity_and_target_share_their_permutation(demo):
    data = TrainingMeshes(MeshStore(demo / "meshes", max_tilt_deg=30), [0, 1], [0, 1, 2])
    batch = draw_batch(data, seed=5, step=2, batch_size=3)
    for b in range(3):
        found = [(i, q, p) for i in (0, 1) for q in (0, 1, 2) for p in (0, 1, 2)
                 if np.allclose(np.sort(batch["identity"][b], axis=0), np.sort(data.vertices(i, q), axis=0))
                 and np.allclose(np.sort(batch["target"][b], axis=0), np.sort(data.vertices(i, p), axis=0))]
        assert found
        i, q, p = found[0]
        # recover the permutation from the identity and check the target follows it
        order = np.array([int(np.argmin(np.abs(data.vertices(i, q) - v).sum(1))) for v in batch["identity"][b]])
        np.testing.assert_allclose(batch["target"][b], data.vertices(i, p)[order], atol=1e-7)
        np.testing.assert_array_equal(order[batch["faces"][b]], load_coarse_template().faces)


# ---- a short training beats both no-learning answers -------------------------------------------

def write_varied_set(root: Path, n_identities: int = 10, n_poses: int = 6, seed: int = 0) -> dict:
    """A tiny set whose identities differ far more than the demo's (stature 0.85-1.15, build
    0.7-1.4), so that the pose mesh itself is a poor answer: the network must move the identity."""
    rng = np.random.default_rng(seed)
    lengths = np.linspace(0.85, 1.15, n_identities)[rng.permutation(n_identities)]
    builds = np.linspace(0.7, 1.4, n_identities)[rng.permutation(n_identities)]
    (root / "meshes").mkdir(parents=True)
    for i, (length, build) in enumerate(zip(lengths, builds)):
        identity = Identity("m", np.full(N_JOINTS, length), np.full(N_JOINTS, build))
        for p in range(n_poses):
            write_obj(root / "meshes" / mesh_name(i, p), *posed(identity, demo_pose(3, p, MOTIONS)))

    def triples(ids, n):
        lines = []
        for _ in range(n):
            a, b = rng.choice(ids, 2, replace=False)
            p, q = rng.choice(n_poses, 2, replace=False)
            lines.append(f"{mesh_name(a, q)} {mesh_name(b, p)} {mesh_name(a, p)}\n")
        return "".join(lines)

    (root / "val.txt").write_text(triples([6, 7], 8))
    (root / "test.txt").write_text(triples([8, 9], 12))
    return {"train_identities": list(range(6)), "train_poses": list(range(n_poses))}


def test_short_training_beats_both_no_learning_answers_on_held_out_identities(tmp_path):
    from shapepose.pose_transfer.evaluate import eval_pose_transfer
    from shapepose.pose_transfer.train import train_pose_transfer
    from shapepose.replicates import replicate_seed

    split = write_varied_set(tmp_path / "set")
    training = config_section("pose_transfer.training", steps=400, validate_every=100,
                              checkpoint_every=400, log_every=50, val_pairs=8)
    settings = {**config_section("pose_transfer.defaults"), "pose_pooling": "max",
                "first_block_normalized": False}
    seed = replicate_seed(11, "pose_transfer", 0)
    train_pose_transfer(meshes=str(tmp_path / "set/meshes"), val_list=str(tmp_path / "set/val.txt"),
                        out=str(tmp_path / "model.pt"), losses_csv=str(tmp_path / "losses.csv"),
                        checkpoint_dir=str(tmp_path / "ck"), variant="maxpool", settings=settings,
                        max_tilt_deg=30, seed=seed, device="cpu", training=training, **split)
    assert "val_pmd" in (tmp_path / "losses.csv").read_text().splitlines()[0]
    result = eval_pose_transfer(model_path=str(tmp_path / "model.pt"), meshes=str(tmp_path / "set/meshes"),
                                test_list=str(tmp_path / "set/test.txt"), out=str(tmp_path / "eval.json"),
                                predictions=str(tmp_path / "pred.npz"), test="seen", seed=11,
                                replicate=0, max_tilt_deg=30, device="cpu")
    assert result["pmd_trained"] < 0.8 * result["pmd_pose_mesh"], result
    assert result["pmd_trained"] < 0.5 * result["pmd_identity_mesh"], result
    assert result["pmd_trained"] < 0.1 * result["pmd_untrained"], result
    assert result["mean_distance_mm_trained"] < result["mean_distance_mm_identity_mesh"], result
    # the npz recomputes every number of the JSON
    saved = np.load(tmp_path / "pred.npz")
    assert pmd(saved["predicted"], saved["ground_truth"]).mean() == pytest.approx(result["pmd_trained"])
    assert pmd(saved["pose"], saved["ground_truth"]).mean() == pytest.approx(result["pmd_pose_mesh"])
    assert pmd(saved["untrained"], saved["ground_truth"]).mean() == pytest.approx(result["pmd_untrained"])
    assert json.loads((tmp_path / "eval.json").read_text())["pmd_trained"] == result["pmd_trained"]
    # the step-0 network is the one the seed builds, and predictions are in the identity's order
    with pytest.raises(InputError, match="replicate 1 of seed 11"):
        eval_pose_transfer(model_path=str(tmp_path / "model.pt"), meshes=str(tmp_path / "set/meshes"),
                           test_list=str(tmp_path / "set/test.txt"), out=str(tmp_path / "x.json"),
                           predictions=str(tmp_path / "x.npz"), test="seen", seed=11, replicate=1,
                           max_tilt_deg=30, device="cpu")


def test_predict_is_in_the_identity_order_whatever_the_pose_order():
    net = PoseTransferNet(arch(pose_pooling="max", first_block_normalized=False)).eval()
    rng = np.random.default_rng(0)
    identity, pose = rng.normal(size=(2, 50, 3)).astype(np.float32), rng.normal(size=(2, 50, 3)).astype(np.float32)
    out = predict(net, identity, pose, torch.device("cpu"))
    np.testing.assert_allclose(predict(net, identity, pose[:, rng.permutation(50)], torch.device("cpu")),
                               out, atol=1e-5)


"""Neural Parts: exact inverses, implicit signs, each loss against a hand computation, the metrics
against analytic volumes and brute force, the split, and a short training run (the table: test_neural_parts_table.py)."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import torch
import trimesh

from shapepose.neural_parts.data import FrameCache, SequenceFiles, draw_batch, split_frames
from shapepose.neural_parts.losses import (LossConfig, chamfer_loss, coverage_loss,
                                           normal_consistency_loss, occupancy_loss, overlap_loss)
from shapepose.neural_parts.metrics import chamfer_l1, predicted_surface, weighted_iou
from shapepose.neural_parts.model import (COUPLING_AXES, ConditionalINN, CouplingLayer,
                                          NeuralParts, sphere_points)
from shapepose.sampling.volume import sample_volume_points

from helpers.configs import config_section

torch.set_num_threads(1)  # two threads on a busy 2-core machine spin-wait on each other


def randomize(module: torch.nn.Module, std: float, seed: int) -> None:
    """Random weights large enough that every layer visibly bends space."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=generator) * std)


def random_condition(batch: int, m: int, dim: int, seed: int, dtype=torch.float32) -> torch.Tensor:
    return torch.randn(batch, m, dim, generator=torch.Generator().manual_seed(seed)).to(dtype)


# ---------------------------------------------------------------- invertibility and implicit signs

# In float64, so that 1e-5 measures the algebra and not float32 rounding of scales up to e^5.
@pytest.mark.parametrize("axis", [0, 1, 2])
def test_each_coupling_layer_inverts_exactly_and_changes_only_its_axis(axis):
    layer = CouplingLayer(axis, condition_dim=8, hidden=16).double()
    randomize(layer, 0.5, seed=axis)
    condition = random_condition(2, 3, 8, seed=10 + axis, dtype=torch.float64)
    x = torch.randn(2, 3, 50, 3, generator=torch.Generator().manual_seed(20 + axis)).double() * 0.5
    y = layer(x, condition)
    kept = [k for k in range(3) if k != axis]
    assert torch.equal(y[..., kept], x[..., kept])
    assert (y[..., axis] - x[..., axis]).abs().max() > 0.1  # the layer is not the identity
    assert (layer.inverse(y, condition) - x).abs().max() < 1e-5
    assert (layer(layer.inverse(x, condition), condition) - x).abs().max() < 1e-5


def test_the_whole_conditional_network_inverts_exactly():
    assert len(COUPLING_AXES) == 4
    inn = ConditionalINN(condition_dim=12, hidden=16).double()
    randomize(inn, 0.3, seed=1)
    inn.origin.copy_(torch.tensor([0.1, 0.9, -0.2]))
    condition = random_condition(2, 4, 12, seed=2, dtype=torch.float64)
    x = torch.randn(2, 4, 100, 3, generator=torch.Generator().manual_seed(3)).double() * 0.25
    y = inn(x, condition)
    assert (y - x).abs().max() > 0.1
    assert (inn.inverse(y, condition) - x).abs().max() < 1e-5
    assert (inn(inn.inverse(y, condition), condition) - y).abs().max() < 1e-5


def test_rotation_is_orthonormal():
    inn = ConditionalINN(condition_dim=6, hidden=8)
    randomize(inn, 1.0, seed=4)
    R = inn.rotation(random_condition(3, 2, 6, seed=5))
    eye = torch.eye(3).expand_as(R)
    assert (R @ R.transpose(-1, -2) - eye).abs().max() < 1e-5
    assert (torch.linalg.det(R) - 1).abs().max() < 1e-5


def test_g_is_negative_inside_and_positive_outside_the_mapped_sphere():
    """Points phi(s u) for unit u: g_m = s - r exactly, so -r/2 at s = r/2 and +r/2 at s = 3r/2."""
    torch.manual_seed(0)
    model = NeuralParts(3, feature_dim=4, embedding_dim=4, hidden=16, radius=0.25)
    randomize(model.inn, 0.3, seed=6)
    condition = random_condition(1, 3, 8, seed=7)
    u = sphere_points(200, 1.0, np.random.default_rng(8))
    for factor, sign in ((0.5, -1), (1.5, 1)):
        mapped = model.inn((factor * 0.25 * u)[None, None].expand(1, 3, -1, -1), condition)
        for m in range(3):
            g = model.implicit(condition, mapped[:, m])[0, m]
            assert torch.all(torch.sign(g) == sign)
            assert torch.allclose(g, torch.full_like(g, (factor - 1) * 0.25), atol=1e-5)


# ---------------------------------------------------------------- losses by hand

def test_chamfer_loss_by_hand():
    predicted = torch.tensor([[[[0.0, 0, 0], [1, 0, 0]]]])  # (B=1, M=1, K=2, 3)
    surface = torch.tensor([[[0.0, 0, 0], [0, 2, 0], [3, 0, 0]]])
    # surface -> prediction: 0, 2, 2; prediction -> surface: 0, 1
    expected = (0 + 2 + 2) / 3 + (0 + 1) / 2
    assert chamfer_loss(predicted, surface).item() == pytest.approx(expected, abs=1e-5)


def test_chamfer_loss_pools_the_primitives():
    """A target point near primitive 2 only is matched there: the prediction is the union."""
    predicted = torch.tensor([[[[0.0, 0, 0]], [[5.0, 0, 0]]]])  # (1, M=2, K=1, 3)
    surface = torch.tensor([[[0.0, 0, 0], [5.0, 0, 1]]])
    assert chamfer_loss(predicted, surface).item() == pytest.approx(0.5 + 0.5, abs=1e-5)


def test_occupancy_loss_by_hand():
    tau = 0.004
    G = torch.tensor([[-0.004, 0.0, 0.008]])  # logits -G / tau = 1, 0, -2
    inside = torch.tensor([[True, True, False]])
    weights = torch.tensor([[2.0, 1.0, 1.0]])  # renormalised to 1/2, 1/4, 1/4
    expected = (0.5 * math.log(1 + math.exp(-1)) + 0.25 * math.log(2)
                + 0.25 * math.log(1 + math.exp(-2)))
    assert occupancy_loss(G, inside, weights, tau).item() == pytest.approx(expected, rel=1e-5)


def test_normal_consistency_loss_by_hand():
    """G(x) = ||x|| - 1 has gradient x / ||x||: cosines 1, 0 and -1 with the given normals."""
    points = torch.tensor([[[2.0, 0, 0], [0, 3, 0], [0, 0, 1]]], requires_grad=True)
    normals = torch.tensor([[[1.0, 0, 0], [1, 0, 0], [0, 0, -1]]])
    G = points.norm(dim=-1) - 1
    assert normal_consistency_loss(G, points, normals).item() == pytest.approx((0 + 1 + 2) / 3, abs=1e-6)


def test_normal_consistency_loss_trains_through_the_gradient():
    scale = torch.tensor(2.0, requires_grad=True)
    points = torch.tensor([[[1.0, 1.0, 0.0]]], requires_grad=True)
    G = scale * points[..., 0] + points[..., 1] ** 2  # gradient (scale, 2 y, 0)
    loss = normal_consistency_loss(G, points, torch.tensor([[[1.0, 0, 0]]]))
    assert loss.item() == pytest.approx(1 - 2 / math.sqrt(8), abs=1e-6)
    loss.backward()
    # d/d scale of 1 - scale / sqrt(scale^2 + 4) at scale 2: -4 / 8^(3/2)
    assert scale.grad.item() == pytest.approx(-4 / 8 ** 1.5, abs=1e-6)


def test_overlap_loss_by_hand():
    big = 100.0
    g = torch.tensor([[[0.0, 0.0, -big], [0.0, 0.0, -big], [0.0, big, -big]]])  # (B=1, M=3, N=3)
    # tau 1: sums of sigmoid(-g) per point are 1.5, 1.0 and 3.0 (up to e^-100)
    assert overlap_loss(g, 1.0, 1.0).item() == pytest.approx((0.5 + 0.0 + 2.0) / 3, abs=1e-6)
    assert overlap_loss(g, 1.0, 1.95).item() == pytest.approx((0 + 0 + 1.05) / 3, abs=1e-6)


def test_coverage_loss_averages_the_k_lowest_interior_points_per_primitive():
    g = torch.tensor([[[0.0, 1.0, -5.0, 2.0], [3.0, -1.0, -7.0, 0.0]]])  # (B=1, M=2, N=4)
    inside = torch.tensor([[True, True, False, True]])  # the very low g at point 2 must not count

    def term(value):
        return -math.log(1e-6 + 1 / (1 + math.exp(value)))  # -log(1e-6 + sigmoid(-value))

    expected = (term(0.0) + term(1.0) + term(-1.0) + term(0.0)) / 4  # mean over k = 2 and M = 2
    assert coverage_loss(g, inside, 1.0, 2).item() == pytest.approx(expected, rel=1e-6)


def authors_min_points_loss(phi_volume: torch.Tensor, labels: torch.Tensor, k: int,
                            sharpness: float) -> torch.Tensor:
    """neural_parts' `min_points_loss`, written out: phi (B, N, M), labels (B, N, 1) in {0, 1}."""
    implicit = phi_volume + (1 - labels) * 1e6
    implicit = torch.topk(implicit, k, dim=1, largest=False, sorted=False)[0]
    return -torch.log(torch.sigmoid(-sharpness * implicit) + 1e-6).mean()


@pytest.mark.parametrize("seed", [0, 1])
def test_coverage_loss_is_the_authors_min_points_loss(seed):
    generator = torch.Generator().manual_seed(seed)
    g = torch.randn(2, 4, 500, generator=generator) * 0.01  # (B, M, N), around the sharpness 250
    inside = torch.rand(2, 500, generator=generator) < 0.3
    expected = authors_min_points_loss(g.transpose(1, 2), inside[..., None].float(), 10, 250.0)
    assert coverage_loss(g, inside, 0.004, 10).item() == pytest.approx(expected.item(), rel=1e-5)


def test_default_loss_settings_are_the_seeds():
    config = LossConfig(**config_section("neural_parts.losses"))  # the authors' DFAUST settings
    assert config.overlap_lambda == 1.95 and config.coverage_k == 10


# ---------------------------------------------------------------- metrics

@pytest.fixture(scope="module")
def sphere_volume_samples():
    radius = 0.4
    mesh = trimesh.creation.icosphere(subdivisions=5, radius=radius)
    samples = sample_volume_points(np.asarray(mesh.vertices), np.asarray(mesh.faces), 40_000,
                                   np.random.default_rng(0), cuboid=(1.0, 1.0, 1.0), center=[0.0, 0.0, 0.0],
                                   cell_size=0.04)
    return samples, radius


def test_weighted_iou_of_a_sphere_with_itself_and_with_a_half_size_sphere(sphere_volume_samples):
    samples, radius = sphere_volume_samples
    distance = np.linalg.norm(samples.points, axis=1)
    assert weighted_iou(distance <= radius, samples.inside, samples.weights) == pytest.approx(1, abs=0.005)
    # The half-size sphere lies inside: IoU = its volume / the sphere's = 1/8.
    half = weighted_iou(distance <= radius / 2, samples.inside, samples.weights)
    assert half == pytest.approx(1 / 8, abs=0.01)
    # and unweighted counting would be biased by the sampler's preference for the surface
    unweighted = weighted_iou(distance <= radius / 2, samples.inside, np.ones(len(distance)))
    assert abs(unweighted - 1 / 8) > 0.02


def test_weighted_iou_by_hand():
    predicted = np.array([True, True, False, False])
    inside = np.array([True, False, True, False])
    weights = np.array([0.1, 0.2, 0.3, 0.4])
    assert weighted_iou(predicted, inside, weights) == pytest.approx(0.1 / 0.6)
    assert weighted_iou(np.zeros(3, bool), np.zeros(3, bool), np.ones(3)) == 1.0


def test_chamfer_l1_against_brute_force():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(300, 3)), rng.normal(size=(200, 3)) + 0.3
    d = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))
    result = chamfer_l1(a, b)
    assert result["accuracy"] == pytest.approx(d.min(axis=1).mean())
    assert result["completeness"] == pytest.approx(d.min(axis=0).mean())
    assert result["chamfer_l1"] == pytest.approx(0.5 * (d.min(axis=1).mean() + d.min(axis=0).mean()))


def test_predicted_surface_drops_points_inside_other_primitives():
    torch.manual_seed(1)
    model = NeuralParts(2, feature_dim=4, embedding_dim=4, hidden=8, radius=0.25)
    with torch.no_grad():  # two overlapping unit-scaled spheres, centres 0.2 apart along x
        for p in model.inn.parameters():
            p.zero_()
        model.inn.translation_net[2].bias.copy_(torch.tensor([0.0, 0.0, 0.0]))
    condition = torch.zeros(1, 2, 8)
    model.inn.origin.zero_()
    shift = torch.tensor([[[-0.1, 0, 0], [0.1, 0, 0]]])
    model.inn.translation = lambda c: shift  # fixed translations, only for this geometry
    points = predicted_surface(model, condition, 2000, np.random.default_rng(0), subdivisions=3)
    assert points.shape == (2000, 3)
    # On the union of two balls of radius 0.25 (scale elu(0) + 1 + 1e-3) about (-0.1, 0, 0) and
    # (0.1, 0, 0): every point is at (about) the radius from one centre and not inside the other.
    r = 0.25 * 1.001
    d1 = np.linalg.norm(points - [-0.1, 0, 0], axis=1)
    d2 = np.linalg.norm(points - [0.1, 0, 0], axis=1)
    assert np.all(np.minimum(np.abs(d1 - r), np.abs(d2 - r)) < 0.01)
    assert np.all(np.minimum(d1, d2) > r - 0.01)


# ---------------------------------------------------------------- split and batches

def test_split_by_sequence_then_frame(tmp_path, monkeypatch):
    import shapepose.neural_parts.data as data

    frames = {"a_x": [0, 2, 4, 6, 8], "b_x": [1, 3, 5], "c_x": [0, 1]}
    monkeypatch.setattr(data, "sequence_frames",
                        lambda files: [data.FrameRef(files, f) for f in frames[files.sequence]])
    files = [SequenceFiles(s, "s", "v", "r") for s in frames]
    split = split_frames(files, test_sequences=["c_x"], val_stride=2)
    names = {k: [r.name for r in v] for k, v in split.items()}
    assert names == {"train": ["a_x/2", "a_x/6", "b_x/3"], "val": ["a_x/0", "a_x/4", "a_x/8",
                                                                   "b_x/1", "b_x/5"],
                     "test": ["c_x/0", "c_x/1"]}


# ---------------------------------------------------------------- a short training run

@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    """Two sequences of 4 frames of an ellipsoid 'person' stepping sideways: samples and renders."""
    from shapepose.io import write_ply
    from shapepose.render import render_meshes
    from shapepose.sampling.sequence import sample_surface, sample_volume

    root = tmp_path_factory.mktemp("np_data")
    ellipsoid = trimesh.creation.icosphere(subdivisions=3, radius=1.0)
    files = []
    for s, sequence in enumerate(["50002_knees", "50004_knees"]):
        mesh_dir = root / "meshes" / sequence
        mesh_dir.mkdir(parents=True)
        for frame in range(4):
            vertices = ellipsoid.vertices * [0.2, 0.45, 0.15] + [0.08 * frame - 0.1 * s, 0.9, 0.0]
            write_ply(mesh_dir / f"frame_{frame:06d}.ply", vertices.astype(np.float32), ellipsoid.faces)
        surface, volume = root / f"{sequence}_surface.h5", root / f"{sequence}_volume.h5"
        sample_surface(str(mesh_dir), str(surface), sequence=sequence, n_points=2000, seed=5)
        sample_volume(str(mesh_dir), str(volume), sequence=sequence, n_points=3000,
                      cuboid=[1.0, 2.0, 1.0], center="bbox", cell_size=0.08,
                      strata={"interior": 0.25, "boundary": 0.5, "exterior": 0.25}, seed=5)
        render_meshes(str(mesh_dir), str(root / "renders" / sequence), size=64,
                        camera={"target": [0.0, 0.9, 0.0]})
        files.append(SequenceFiles(sequence, str(surface), str(volume), str(root / "renders" / sequence)))
    return root, files


TINY_MODEL = {"image_size": 64, "feature_dim": 16, "embedding_dim": 16, "hidden": 32, "radius": 0.25,
              "pretrained": None, "freeze_batchnorm": True}
TINY_TRAINING = config_section(
    "neural_parts.training", steps=40, batch_size=2, surface_points=200, volume_points=400,
    sphere_points=50, lr=0.003, checkpoint_every=20, validate_every=20, log_every=10,
    val_frames=2, cache_frames=16)
TINY_SPLIT = {"test_sequences": ["50004_knees"], "val_stride": 4}


def test_batches_are_a_pure_function_of_seed_and_step(tiny_dataset):
    _, files = tiny_dataset
    frames = split_frames(files, **TINY_SPLIT)["train"]
    kwargs = dict(batch_size=2, n_surface=50, n_volume=60, n_sphere=10, radius=0.25,
                  device=torch.device("cpu"))
    first, sphere = draw_batch(frames, FrameCache(32), seed=1, stage="np", step=7, **kwargs)
    again, sphere_again = draw_batch(frames, FrameCache(32), seed=1, stage="np", step=7, **kwargs)
    other, _ = draw_batch(frames, FrameCache(32), seed=1, stage="np", step=8, **kwargs)
    assert all(torch.equal(first[k], again[k]) for k in first) and torch.equal(sphere, sphere_again)
    assert not torch.equal(first["volume_points"], other["volume_points"])
    assert first["images"].shape == (2, 3, 32, 32) and first["inside"].dtype == torch.bool


def test_short_training_lowers_the_loss_and_beats_its_untrained_weights(tiny_dataset, tmp_path,
                                                                       monkeypatch):
    from shapepose.neural_parts import train
    from shapepose.errors import InputError
    from shapepose.neural_parts.evaluate import eval_neural_parts
    from shapepose.replicates import replicate_seed
    from shapepose.training import load_exported

    _, files = tiny_dataset
    train_files = [f for f in files if f.sequence not in TINY_SPLIT["test_sequences"]]
    losses = {"reconstruction": 0.3, "occupancy": 1.0, "normal": 0.01, "overlap": 0.1,
              "coverage": 0.01, "tau": 0.004, "overlap_lambda": 1.95, "coverage_k": 10}
    seed = replicate_seed(3, "neural_parts", 1)  # replicate 1 of config seed 3

    # the weights training starts from, as the trainer receives them
    started_from = {}

    class RecordingTrainer(train.Trainer):
        def fit(self, *args, **kwargs):
            started_from.update({k: v.detach().clone()
                                 for k, v in self.modules["model"].state_dict().items()})
            return super().fit(*args, **kwargs)

    monkeypatch.setattr(train, "Trainer", RecordingTrainer)

    def columns(rows):
        return dict(sequences=[f.sequence for f in rows], surface=[f.surface for f in rows],
                    volume=[f.volume for f in rows], renders=[f.renders for f in rows])

    train.train_neural_parts(**columns(train_files), out=str(tmp_path / "model.pt"),
                             losses_csv=str(tmp_path / "losses.csv"),
                             checkpoint_dir=str(tmp_path / "ckpt"), n_primitives=2, seed=seed,
                             device="cpu", split=TINY_SPLIT, model=TINY_MODEL, losses=losses,
                             training=TINY_TRAINING)
    exported = load_exported(tmp_path / "model.pt")
    meta = exported["meta"]
    assert meta["extra"]["n_train_frames"] == 3 and meta["which"] == "best" and meta["seed"] == seed

    history = list(csv.DictReader(open(tmp_path / "losses.csv")))
    assert (tmp_path / "losses.csv").read_bytes() == (tmp_path / "ckpt" / "history.csv").read_bytes()
    totals = [float(r["total"]) for r in history if r["total"]]
    assert len(totals) == 4 and totals[-1] < totals[0], totals

    # untrained: the very weights (and buffers) training started from, rebuilt from the file
    untrained = train.load_model(exported, torch.device("cpu"), untrained=True).state_dict()
    assert set(untrained) == set(started_from)
    assert all(torch.equal(untrained[k], started_from[k]) for k in started_from)
    trained = train.load_model(exported, torch.device("cpu")).state_dict()
    assert not torch.equal(trained["embeddings"], started_from["embeddings"])
    # another init stream (here another seed) would not pass the comparison above
    other = dict(exported, meta=dict(meta, seed=seed + 1))
    assert not torch.equal(train.load_model(other, torch.device("cpu"), untrained=True)
                           .state_dict()["embeddings"], started_from["embeddings"])

    results = {}
    for untrained_weights in (False, True):
        out = tmp_path / f"eval_{untrained_weights}.json"
        results[untrained_weights] = eval_neural_parts(
            model_path=str(tmp_path / "model.pt"), **columns(files), out=str(out), seed=3,
            device="cpu", split=TINY_SPLIT, n_points=500, max_frames=None, subdivisions=2,
            image_size=64, untrained=untrained_weights, replicate=1)
        written = json.loads(out.read_text())
        assert written["untrained"] is untrained_weights and written["replicate"] == 1
        assert written["n_test_frames"] == 4 and written["n_points"] == 500
        assert len(written["frames"]) == 4 and {"iou", "chamfer_l1"} <= set(written["frames"][0])
        assert written["training"]["step_exported"] == (0 if untrained_weights else meta["step"])
    assert results[False]["iou"] > results[True]["iou"] + 0.05, (results[False]["iou"],
                                                                 results[True]["iou"])
    # the model file is replicate 1's: labelling it replicate 0 is refused, naming the file
    with pytest.raises(InputError, match="replicate 0") as caught:
        eval_neural_parts(
            model_path=str(tmp_path / "model.pt"), **columns(files), out=str(tmp_path / "x.json"),
            seed=3, device="cpu", split=TINY_SPLIT, n_points=500, max_frames=None, subdivisions=2,
            image_size=64, untrained=False, replicate=0)
    assert caught.value.path == str(tmp_path / "model.pt")


def test_frozen_batchnorm_stays_on_stored_statistics_in_training_mode():
    model = NeuralParts(2, feature_dim=4, embedding_dim=4, hidden=8, freeze_batchnorm=True)
    batchnorms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert batchnorms and not any(m.training for m in batchnorms)
    model.eval().train()
    assert not any(m.training for m in batchnorms) and model.encoder.head.training
    # so a single 1 x 1 feature map (batch statistics impossible) trains
    model.conditions(torch.rand(1, 3, 32, 32)).sum().backward()

"""Shape-and-pose evaluation on a tiny DPC set: an oracle network, a wrong one, and the tables.

The evaluation module imports torchvision (through the training module) at collection time, before
the tiny_dpc fixture renders with EGL: importing it after an EGL context exists crashes the process.
"""

import hashlib
import json
import math
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from shapepose.errors import InputError
from shapepose.images.dpc import pose_from_position, read_dpc
from shapepose.shape_pose.data import ViewSet, prepare_view
from shapepose.shape_pose.evaluate import (
    eval_real_masks,
    eval_shape_pose,
    evaluate_net,
    predict_split,
    real_mask_rows,
)
from shapepose.shape_pose.model import Architecture, build_model
from shapepose.shape_pose.table import cdf_curve, cdf_grid

from helpers.data import TINY_DPC

# the set is tests/conftest.py's tiny_dpc
SIZE, VIEWS, GT_POINTS = TINY_DPC["image_size"], TINY_DPC["views"], TINY_DPC["gt_points"]
EVAL_POINTS = 2000
EVALUATION = {"points": EVAL_POINTS, "accuracy_threshold": 30,
              "alignment": {"models": 15, "views_per_model": 2, "icp_threshold": 0.2, "icp_iterations": 30,
                            "fit_models": None, "starts": True, "consensus_deg": 30},
              "real_masks": {"size": 128, "point_radius": 0.012, "kde_points": 50}}
# the oracle's frame: a fixed rotation B of 100 degrees about (1, 2, -1), written out by hand
B_AXIS = np.array([1.0, 2.0, -1.0]) / math.sqrt(6.0)
B_QUAT = np.concatenate([[math.cos(math.radians(50))], math.sin(math.radians(50)) * B_AXIS])


def hamilton(a, b):
    """Quaternion product a b, (w, x, y, z), written out by hand."""
    aw, ax, ay, az = a
    bw, bx, by, bz = b
    return np.array([aw * bw - ax * bx - ay * by - az * bz, aw * bx + ax * bw + ay * bz - az * by,
                     aw * by - ax * bz + ay * bw + az * bx, aw * bz + ax * by - ay * bx + az * bw])


def rotation_matrix(q):
    w, x, y, z = q / np.linalg.norm(q)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                     [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                     [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])


def conjugate(q):
    return q * np.array([1.0, -1.0, -1.0, -1.0])


def _key(image: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(image, dtype=np.float32).tobytes()).hexdigest()


class Oracle(torch.nn.Module):
    """Knows every view of the set: answers the true cloud and pose, both in the frame B.

    By default the cloud is the LAST GT_POINTS - EVAL_POINTS ground-truth points (the evaluation
    scores against the first EVAL_POINTS), so Chamfer sees sub-sampling noise only; `points`
    picks others. `shift` moves the cloud off-centre (a wrong network).
    """

    def __init__(self, root, shift=(0.0, 0.0, 0.0), points=slice(EVAL_POINTS, None)):
        super().__init__()
        data = read_dpc(root)
        B = rotation_matrix(B_QUAT)
        self.answers = {}
        for m in data.models:
            cloud = data.load_points(m)[points] @ B.T + np.asarray(shift)
            for v in range(data.n_views):
                image = prepare_view(data.load_view(m, v), SIZE, SIZE)[0]
                pose = pose_from_position(data.load_camera(m, v)["position"])
                # R_pred (B p) = R_gt p  <=>  R_pred = R_gt B^T
                self.answers[_key(image)] = (cloud, hamilton(pose, conjugate(B_QUAT)))

    def predict(self, images):
        found = [self.answers[_key(image)] for image in images.cpu().numpy()]
        return {"points": torch.from_numpy(np.stack([p for p, _ in found]).astype(np.float32)),
                "pose": torch.from_numpy(np.stack([q for _, q in found]))}


@pytest.fixture(scope="module")
def cutouts(tiny_dpc, tmp_path_factory):
    """The test renders copied as 'real' cut-outs (square RGBA PNGs, alpha = mask)."""
    folder = tmp_path_factory.mktemp("cutouts")
    data = read_dpc(tiny_dpc)
    for m in data.split("test"):
        for v in range(2):
            shutil.copyfile(data.image_path(m, v), folder / f"{m}_{v}.png")
    return folder


def test_oracle_scores_perfectly_after_alignment(tiny_dpc):
    test = ViewSet(tiny_dpc, "test", SIZE, SIZE)
    table, summary = evaluate_net(Oracle(tiny_dpc), align_views=ViewSet(tiny_dpc, "val", SIZE, SIZE),
                                  test_views=test, evaluation=EVALUATION, device="cpu")
    assert len(table) == summary["n_views"] == len(test) * VIEWS
    # the alignment undoes B
    A = np.array(summary["alignment"]["quaternion"])
    assert 2 * math.degrees(math.acos(min(1.0, abs(A @ conjugate(B_QUAT))))) < 0.5
    assert summary["accuracy"] == 1.0 and summary["median_error_deg"] < 1.0
    # Chamfer is what brute force gives between the two disjoint ground-truth subsets
    expected = []
    for i in range(len(test)):
        points = test.points(i)
        gt, pred = points[:EVAL_POINTS], points[EVAL_POINTS:]
        d = np.sqrt(((pred[:, None, :].astype(np.float64) - gt[None, :, :]) ** 2).sum(-1))
        expected.append((d.min(axis=1).mean(), d.min(axis=0).mean()))
    precision, coverage = np.mean(expected, axis=0) * 100
    assert summary["precision"] == pytest.approx(precision, rel=0.02)
    assert summary["coverage"] == pytest.approx(coverage, rel=0.02)
    assert summary["chamfer"] == pytest.approx(precision + coverage, rel=0.02)
    assert summary["chamfer"] < 5.0  # sub-sampling noise: a few hundredths of the car's diagonal
    assert (table["pose_error_deg"] < 1.0).all()


def test_every_ground_truth_point_is_scored_when_points_is_none(tiny_dpc):
    """DPC's eval_chamfer: the whole file. An oracle answering the whole ground-truth cloud then
    scores 0; against a prefix its precision is the brute-force distance of the rest to it."""
    oracle, test = Oracle(tiny_dpc, points=slice(None)), ViewSet(tiny_dpc, "test", SIZE, SIZE)
    scores = {}
    for points in (None, 1000):
        table, scores[points] = evaluate_net(oracle, align_views=ViewSet(tiny_dpc, "val", SIZE, SIZE),
                                             test_views=test, evaluation={**EVALUATION, "points": points},
                                             device="cpu")
    assert scores[None]["gt_points"] == "all"
    assert scores[None]["precision"] < 1e-3 and scores[None]["coverage"] < 1e-3  # x100
    expected = []
    for i in range(len(test)):
        cloud = test.points(i).astype(np.float64)
        d = np.sqrt(((cloud[:, None, :] - cloud[None, :1000, :]) ** 2).sum(-1))
        expected.append(d.min(axis=1).mean())
    assert scores[1000]["precision"] == pytest.approx(np.mean(expected) * 100, rel=0.02)
    assert scores[1000]["coverage"] < 0.1  # the rotation is fitted to the prefix here: 0.04


def test_predict_split_shapes(tiny_dpc):
    views = ViewSet(tiny_dpc, "val", SIZE, SIZE)
    points, quats = predict_split(Oracle(tiny_dpc), views, "cpu", batch=3)
    assert points.shape == (len(views), VIEWS, GT_POINTS - EVAL_POINTS, 3) and points.dtype == np.float32
    assert quats.shape == (len(views), VIEWS, 4)
    np.testing.assert_allclose(np.linalg.norm(quats, axis=-1), 1.0, atol=1e-6)


def test_real_masks_of_the_oracle_and_of_an_off_centre_network(tiny_dpc, cutouts):
    # every ground-truth point: 1000 spheres of radius 0.012 leave holes in the silhouette
    rows = real_mask_rows(Oracle(tiny_dpc, points=slice(None)), image_size=SIZE, cutouts=cutouts, synthetic=tiny_dpc,
                          evaluation=EVALUATION, device="cpu", batch=5)
    n_test = len(read_dpc(tiny_dpc).split("test"))
    assert (rows["set"] == "real").sum() == 2 * n_test
    assert (rows["set"] == "synthetic").sum() == VIEWS * n_test
    assert rows["disagreement"].max() < 0.25
    wrong = real_mask_rows(Oracle(tiny_dpc, shift=(3.0, 0.0, 0.0)), image_size=SIZE, cutouts=cutouts,
                           synthetic=tiny_dpc, evaluation=EVALUATION, device="cpu")
    assert wrong["disagreement"].min() > 0.9


def test_cutout_folder_without_png_is_named(tiny_dpc, tmp_path):
    empty = tmp_path / "no_cutouts"
    empty.mkdir()
    with pytest.raises(InputError, match="no_cutouts"):
        real_mask_rows(Oracle(tiny_dpc), image_size=SIZE, cutouts=empty, synthetic=tiny_dpc,
                       evaluation=EVALUATION, device="cpu")


def _export(path, seed, trained_seed):
    """A file as train_shape_pose writes it: weights of build_model(arch, trained_seed), meta seed `seed`."""
    arch = Architecture(image_size=SIZE, filters=4, encoder_pairs=2, fc=32, points=300, candidates=2,
                        pose_hidden=8, point_range=0.5, occupancy_scaling=True)
    net = build_model(arch, trained_seed)
    torch.save({"net": net.state_dict(),
                "meta": {"seed": seed, "step": 7, "extra": {"architecture": arch.to_dict(),
                                                            "summary": {"best_step": 7}}}}, path)


def test_entry_points_write_their_files(tiny_dpc, cutouts, tmp_path):
    model = tmp_path / "model.pt"
    _export(model, seed=11, trained_seed=12)
    n_test = len(read_dpc(tiny_dpc).split("test"))
    summaries = {}
    for untrained in (False, True):
        out = tmp_path / f"u{untrained}"
        summaries[untrained] = eval_shape_pose(
            model=str(model), untrained=untrained, align_data=str(tiny_dpc), test_data=str(tiny_dpc),
            variant="original", test_set="original", replicate=2, out_csv=str(out / "eval.csv"),
            out_json=str(out / "eval.json"), evaluation=EVALUATION, device="cpu", seed=0)
        written = json.loads((out / "eval.json").read_text())
        assert written == json.loads(json.dumps(summaries[untrained]))
        assert written["untrained"] is untrained and written["n_views"] == n_test * VIEWS
        assert written["step"] == (0 if untrained else 7)
        assert written["replicate"] == 2
        table = pd.read_csv(out / "eval.csv")
        assert list(table.columns) == ["model", "view", "precision", "coverage", "chamfer", "pose_error_deg"]
        assert len(table) == n_test * VIEWS
        assert written["chamfer"] == pytest.approx(table["chamfer"].mean() * 100)
        assert not any(p.name.endswith(".partial") for p in out.iterdir())
    # step-0 weights rebuilt from the recorded seed are not the exported ones
    assert summaries[True]["chamfer"] != summaries[False]["chamfer"]
    rows = eval_real_masks(model=str(model), untrained=False, cutouts=str(cutouts), synthetic=str(tiny_dpc),
                           variant="original", replicate="1", out_csv=str(tmp_path / "real.csv"),
                           evaluation=EVALUATION, device="cpu", seed=0)
    written = pd.read_csv(tmp_path / "real.csv")
    assert list(written.columns) == ["variant", "replicate", "set", "image", "disagreement"]
    assert len(written) == len(rows) and set(written["replicate"]) == {1} and set(written["variant"]) == {"original"}
    assert ((written["disagreement"] >= 0) & np.isfinite(written["disagreement"])).all()


# ---- figures 6.5 / 7.1 (the tables: test_shape_pose_table.py) ------------------------------------

def test_kde_cdf_is_monotone_and_reaches_one():
    values = np.random.default_rng(0).gamma(2.0, 0.2, size=300)
    grid = cdf_grid([values], 200)
    cdf = cdf_curve(values, grid)
    assert np.all(np.diff(cdf) >= -1e-12) and cdf[-1] == pytest.approx(1.0, abs=1e-3)
    # near the median of the data the smoothed CDF is near one half
    assert np.interp(np.median(values), grid, cdf) == pytest.approx(0.5, abs=0.05)
    # one distinct value: the empirical step instead of a kernel
    step = cdf_curve(np.array([0.4, 0.4]), np.array([0.0, 0.39, 0.4, 1.0]))
    np.testing.assert_array_equal(step, [0, 0, 1, 1])

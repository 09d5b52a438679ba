"""Shape and pose on the trainer's fast path: bf16 and fp16 runs train (finite losses, a better
validation error than the untrained network) and are really another arithmetic than fp32;
DataLoader workers draw exactly the inline batches (the same weights, bit for bit); processes
that each take a slice of a batch draw the point dropout one process draws."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from shapepose.shape_pose import losses as L
from shapepose.shape_pose.data import ViewSet
from shapepose.shape_pose.train import (load_model, load_projector, loss_settings,
                                        train_shape_pose, validation_losses)
from shapepose.training import load_exported

from helpers.configs import config_section
from test_shape_pose import LOSSES, MODEL, PROJECTION

pytestmark = pytest.mark.usefixtures("one_torch_thread")

STEPS = 12


def run(data: Path, folder: Path, fast_path: dict | None = None) -> Path:
    """A 12-step run on the shared tiny set (2 models x 3 views, the point dropout on)."""
    training = config_section("shape_pose.training", steps=STEPS, models_per_batch=2,
                              views_per_model=3, lr=0.001, weight_decay=0.001,
                              checkpoint_every=STEPS, validate_every=STEPS, log_every=4,
                              val_models=2)
    train_shape_pose(data=str(data), out=str(folder / "model.pt"),
                     losses_csv=str(folder / "losses.csv"), checkpoint_dir=str(folder / "ck"),
                     model=MODEL, projection=PROJECTION, losses=LOSSES, training=training,
                     device="cpu", seed=4, fast_path=fast_path)
    return folder


@pytest.fixture(scope="module")
def fp32(tiny_dpc, tmp_path_factory) -> Path:
    threads = torch.get_num_threads()  # one thread, as the tests (their fixture comes later)
    torch.set_num_threads(1)
    try:
        return run(tiny_dpc, tmp_path_factory.mktemp("sp_fp32"))
    finally:
        torch.set_num_threads(threads)


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_exported(folder / "model.pt")["net"]


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_low_precision_trains_and_is_not_the_fp32_run(tiny_dpc, fp32, tmp_path, precision):
    run(tiny_dpc, tmp_path, fast_path={"precision": precision})
    exported = load_exported(tmp_path / "model.pt")
    assert exported["meta"]["fast_path"]["precision"] == precision
    history = pd.read_csv(tmp_path / "losses.csv")
    assert np.isfinite(history[["total", "reprojection", "student"]].to_numpy()).all()
    ours, theirs = weights(tmp_path), weights(fp32)
    assert any(not torch.equal(ours[k], theirs[k]) for k in ours)
    # it learns: the student's reprojection error on the validation models beats step 0's
    val = ViewSet(tiny_dpc, "val", MODEL["image_size"], PROJECTION["grid"])
    settings = loss_settings(LOSSES, PROJECTION)
    errors = {untrained: validation_losses(load_model(exported, untrained=untrained), val, 2,
                                           load_projector(exported), settings,
                                           torch.device("cpu"))["val_student_reprojection"]
              for untrained in (True, False)}
    assert errors[False] < 0.9 * errors[True], errors


def test_loader_workers_draw_the_inline_batches(tiny_dpc, fp32, tmp_path):
    run(tiny_dpc, tmp_path, fast_path={"loader_workers": 2})
    ours, theirs = weights(tmp_path), weights(fp32)
    assert ours.keys() == theirs.keys()
    for key in ours:
        assert torch.equal(ours[key], theirs[key]), key
    assert (tmp_path / "losses.csv").read_bytes() == (fp32 / "losses.csv").read_bytes()


@pytest.mark.parametrize("pairing", ["first_view", "all_pairs"])
def test_slices_of_a_batch_draw_what_the_whole_batch_draws(pairing):
    """Two processes, each with its half of the models and its rows of the global batch's point
    subsets, compute the losses one process computes on the whole batch."""
    from shapepose.shape_pose.projection import Projector
    from shapepose.geometry import quaternions

    torch.manual_seed(5)
    B, W, K, N = 4, 3, 2, 40
    projector = Projector(12, kernel_size=3)
    out = {"points": (torch.rand(B, W, N, 3) - 0.5) * 0.6,
           "candidates": quaternions.normalize(torch.randn(B, W, K, 4)),
           "student": quaternions.normalize(torch.randn(B, W, 4)),
           "scale": torch.rand(B, W) * 0.5 + 0.5}
    masks = (torch.rand(B, W, 12, 12) > 0.6).float()
    settings = L.LossSettings(**{**config_section("shape_pose.losses"), "pairing": pairing,
                                 "sigma": (0.8, 0.8)})
    whole = L.pair_losses(out, masks, projector, settings, 0.8, 0.5,
                          torch.Generator().manual_seed(9))
    subsets = L.draw_point_subsets(B, W, K, N, pairing, 0.5, torch.Generator().manual_seed(9))
    halves = [L.pair_losses({k: v[part] for k, v in out.items()}, masks[part], projector,
                            settings, 0.8, 0.5, subsets=subsets[part])
              for part in (slice(0, 2), slice(2, 4))]
    for name in ("reprojection", "student", "total"):
        torch.testing.assert_close((halves[0][name] + halves[1][name]) / 2, whole[name])
    assert torch.equal(torch.cat([h["winner"] for h in halves]), whole["winner"])

"""Pose transfer on the trainer's fast path: a bf16 run trains (finite, falling losses) and is
really another arithmetic than fp32; DataLoader workers draw exactly the
inline batches (the same weights, bit for bit)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from shapepose.pose_transfer.demo import make_demo_pose_pairs
from shapepose.pose_transfer.train import train_pose_transfer
from shapepose.training import load_exported

from helpers.configs import config_section
from test_pose_transfer import DEMO

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SEED = 5
TRAIN = {"train_identities": [0, 1], "train_poses": [0, 1, 2]}


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("npt_fast")
    make_demo_pose_pairs(meshes=root / "meshes", val_list=root / "val.txt",
                         seen_list=root / "seen.txt", unseen_list=root / "unseen.txt", seed=7,
                         **DEMO)
    return root


def train_tiny(demo: Path, folder: Path, *, variant: str = "original", steps: int = 30,
               fast_path: dict | None = None, **training) -> dict:
    """train_pose_transfer's keyword arguments for a width-16 run on the demo set (batch 4);
    `training` changes config.yaml's training section."""
    change = config_section("pose_transfer.variants")[variant] or {}
    settings = {**config_section("pose_transfer.defaults"), "width": 16, **change}
    section = config_section("pose_transfer.training", **{
        "steps": steps, "batch_size": 4, "validate_every": steps, "checkpoint_every": steps,
        "log_every": 5, "val_pairs": 3, **training})
    return dict(meshes=str(demo / "meshes"), val_list=str(demo / "val.txt"),
                out=str(folder / "model.pt"), losses_csv=str(folder / "losses.csv"),
                checkpoint_dir=str(folder / "ck"), variant=variant, settings=settings,
                max_tilt_deg=30, seed=SEED, device="cpu", training=section,
                fast_path=fast_path, **TRAIN)


@pytest.fixture(scope="module")
def fp32(demo, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("fp32")
    threads = torch.get_num_threads()  # one thread, as the tests (their fixture comes later)
    torch.set_num_threads(1)
    try:
        train_pose_transfer(**train_tiny(demo, folder))
    finally:
        torch.set_num_threads(threads)
    return folder


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_exported(folder / "model.pt")["model"]


def test_bf16_trains_and_is_not_the_fp32_run(demo, fp32, tmp_path):
    train_pose_transfer(**train_tiny(demo, tmp_path, fast_path={"precision": "bf16"}))
    exported = load_exported(tmp_path / "model.pt")
    assert exported["meta"]["fast_path"]["precision"] == "bf16"
    losses = pd.read_csv(tmp_path / "losses.csv")
    assert np.isfinite(losses[["reconstruction", "edge", "total"]].to_numpy()).all()
    assert losses["total"].iloc[-1] < 0.8 * losses["total"].iloc[0], losses  # it learns
    ours, theirs = weights(tmp_path), weights(fp32)
    assert any(not torch.equal(ours[k], theirs[k]) for k in ours)  # bf16 really ran


def test_loader_workers_draw_the_inline_batches(demo, fp32, tmp_path):
    train_pose_transfer(**train_tiny(demo, tmp_path, fast_path={"loader_workers": 2}))
    ours, theirs = weights(tmp_path), weights(fp32)
    assert ours.keys() == theirs.keys()
    for key in ours:
        assert torch.equal(ours[key], theirs[key]), key
    assert (tmp_path / "losses.csv").read_bytes() == (fp32 / "losses.csv").read_bytes()

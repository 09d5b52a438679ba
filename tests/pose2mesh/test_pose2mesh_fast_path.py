"""Pose2Mesh on the trainer's fast path: both stages train in bf16 (finite, falling losses; not the
fp32 weights), the targets kept on the device or sent with each batch give the same bytes, and so
do DataLoader workers making the host batches; the whole model trains in two processes."""

import numpy as np
import pandas as pd
import pytest
import torch

from shapepose.pose2mesh.demo import make_demo_h36m
from shapepose.pose2mesh.train import train_meshnet
from shapepose.training import load_exported
from shapepose.training.distributed import launch

from test_pose2mesh_data_training import (DEMO, EXPERIMENT, LOSSES, MODEL, NOISE, SPLIT, _meshnet,
                                          _posenet, single_thread, training)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ON_DEVICE = {"preload_mb": 2048}  # the demo's targets (under 10 MB) are kept on the device
WITH_BATCHES = {"preload_mb": 0}  # ... or sent with every batch, as the real set's are


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("h36m_fast") / "data"
    make_demo_h36m(out=root, **DEMO)
    return root


@pytest.fixture(scope="module")
def fp32(demo, tmp_path_factory):
    """Both stages in fp32 with the targets on the device: 30 PoseNet and 20 MeshNet steps."""
    folder = tmp_path_factory.mktemp("fp32")
    with single_thread():
        _posenet(demo, folder, steps=30, fast_path=ON_DEVICE)
        _meshnet(demo, folder, steps=20, fast_path=ON_DEVICE)
    return folder


def same_export(a, b, name):
    x, y = load_exported(a / name), load_exported(b / name)
    for part in (k for k in x if k != "meta"):
        for key in x[part]:
            assert torch.equal(x[part][key], y[part][key]), (name, part, key)


def test_bf16_trains_both_stages_and_is_not_fp32(demo, fp32, tmp_path):
    (tmp_path / "posenet.pt").write_bytes((fp32 / "posenet.pt").read_bytes())
    _meshnet(demo, tmp_path, steps=20, fast_path={**ON_DEVICE, "precision": "bf16"})
    _posenet(demo, tmp_path, steps=30, fast_path={**ON_DEVICE, "precision": "bf16"})
    for name, losses, total in (("posenet", "posenet.csv", "lifted_joint"),
                                ("model", "losses.csv", "total")):
        exported = load_exported(tmp_path / f"{name}.pt")
        assert exported["meta"]["fast_path"]["precision"] == "bf16"
        rows = pd.read_csv(tmp_path / losses)
        terms = [c for c in rows if c != "step" and not c.startswith("val_")]
        assert np.isfinite(rows[terms].to_numpy()).all()
        assert rows[total].iloc[-1] < rows[total].iloc[0], rows  # it learns
        theirs = load_exported(fp32 / f"{name}.pt")
        part = next(k for k in exported if k != "meta")
        assert any(not torch.equal(v, theirs[part][k]) for k, v in exported[part].items())


def test_targets_on_the_device_or_with_each_batch_give_the_same_bytes(demo, fp32, tmp_path):
    _posenet(demo, tmp_path, steps=30, fast_path=WITH_BATCHES)
    same_export(fp32, tmp_path, "posenet.pt")
    _meshnet(demo, tmp_path, steps=20, fast_path=WITH_BATCHES)
    same_export(fp32, tmp_path, "model.pt")
    assert (tmp_path / "losses.csv").read_bytes() == (fp32 / "losses.csv").read_bytes()


def test_loader_workers_make_the_inline_batches(demo, fp32, tmp_path):
    (tmp_path / "posenet.pt").write_bytes((fp32 / "posenet.pt").read_bytes())
    _meshnet(demo, tmp_path, steps=20, fast_path={**WITH_BATCHES, "loader_workers": 2},
             training=training(20, 16, checkpoint_every=7))  # and a checkpoint mid-epoch
    same_export(fp32, tmp_path, "model.pt")


def test_the_whole_model_trains_in_two_processes(fp32, tmp_path):
    """DistributedDataParallel over gloo: MeshNet's graphs, sparse buffers DDP cannot broadcast,
    are left to each rank. Batch norm and dropout make it another run than one process's on the
    CPU (shapepose.pose2mesh.train), so this checks that it trains, not what it gives. A smaller
    demo than the others': each rank reads it."""
    data = tmp_path / "data"
    make_demo_h36m(out=data, **{**DEMO, "motions": ["punching"], "frames": 6, "subactions": 1})
    launch(train_meshnet, dict(
        data=str(data), posenet=str(fp32 / "posenet.pt"), out=str(tmp_path / "model.pt"),
        losses_csv=str(tmp_path / "losses.csv"), checkpoint_dir=str(tmp_path / "ck"),
        experiment=EXPERIMENT, seed=11, device="cpu", split=SPLIT, noise=NOISE, model=MODEL,
        graph={"levels": 5}, losses=LOSSES, training=training(4, 16, log_every=1),
        fast_path=ON_DEVICE), processes=2, threads=1)
    exported = load_exported(tmp_path / "model.pt")
    assert exported["meta"]["world_size"] == 2 and exported["meta"]["step"] == 4
    rows = pd.read_csv(tmp_path / "losses.csv")
    assert len(rows) == 4 and np.isfinite(rows["total"]).all()

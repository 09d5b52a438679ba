"""The demo segmenter on the trainer's fast path, two steps each (bf16 convolutions are emulated on
a CPU without bf16 instructions, several times slower than fp32): bf16 runs with finite losses
and is not the fp32 run; DataLoader workers make exactly the inline batches."""

import numpy as np
import pandas as pd
import pytest
import torch

from shapepose.segmentation.train import train_segmenter
from shapepose.training import load_exported

from test_segmentation import tiny_training, write_training_set

pytestmark = pytest.mark.usefixtures("one_torch_thread")

STEPS = 2


def train(train_set, folder, fast_path=None):
    train_segmenter(train_set=train_set, out=folder / "model.pt",
                    losses_csv=folder / "losses.csv", checkpoint_dir=folder / "ckpt",
                    training=tiny_training(steps=STEPS, warmup_steps=1, checkpoint_every=STEPS,
                                           validate_every=STEPS, log_every=1),
                    seed=8, device="cpu", fast_path=fast_path)
    return load_exported(folder / "model.pt")


@pytest.fixture(scope="module")
def train_set(tmp_path_factory):
    return write_training_set(tmp_path_factory.mktemp("seg_fast") / "train_set", 6, seed=6)


@pytest.fixture(scope="module")
def fp32(train_set, tmp_path_factory):
    folder = tmp_path_factory.mktemp("fp32")
    threads = torch.get_num_threads()  # one thread, as the tests (their fixture comes later)
    torch.set_num_threads(1)
    try:
        train(train_set, folder)
    finally:
        torch.set_num_threads(threads)
    return folder


def test_bf16_runs_and_is_not_the_fp32_run(train_set, fp32, tmp_path):
    exported = train(train_set, tmp_path, {"precision": "bf16"})
    assert exported["meta"]["fast_path"]["precision"] == "bf16"
    losses = pd.read_csv(tmp_path / "losses.csv")
    terms = [c for c in losses if c == "loss" or c.startswith("loss_")]
    assert len(losses) == STEPS and np.isfinite(losses[terms].to_numpy()).all()
    theirs = load_exported(fp32 / "model.pt")["model"]
    assert any(not torch.equal(v, theirs[k]) for k, v in exported["model"].items())


def test_loader_workers_make_the_inline_batches(train_set, fp32, tmp_path):
    ours = train(train_set, tmp_path, {"loader_workers": 2})["model"]
    theirs = load_exported(fp32 / "model.pt")["model"]
    for key, value in ours.items():
        assert torch.equal(value, theirs[key]), key
    assert (tmp_path / "losses.csv").read_bytes() == (fp32 / "losses.csv").read_bytes()

"""The Liquid Warping GAN on the trainer's fast path: a bf16 run trains (finite losses, the
validation error falls) and is really another arithmetic than fp32; DataLoader workers make
exactly the inline batches (the same weights and history, bit for bit); the face loss's head
boxes made on the host are the ones the loss finds itself."""

import torchvision  # noqa: F401  (before any EGL render)

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from shapepose.lwgan.data import make_demo_iper
from shapepose.lwgan.losses import face_loss, head_boxes
from shapepose.lwgan.train import train_lwgan
from shapepose.training import load_exported

from test_train import DEMO, EXPERIMENT, MODEL, WEIGHTS, training

pytestmark = pytest.mark.usefixtures("one_torch_thread")

STEPS = 24
# test_train's stabilizers (gradient penalty, spectral norm, label smoothing) at constant rates
SETTINGS = EXPERIMENT | dict(lr_final=None)


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("lwgan_fast") / "iPER"
    make_demo_iper(str(root), **DEMO)
    return root


def run(demo: Path, folder: Path, fast_path: dict | None = None) -> None:
    """24 steps of test_train's tiny setup, validated every 8."""
    train_lwgan(data=str(demo), out=str(folder / "model.pt"),
                losses_csv=str(folder / "losses.csv"), checkpoint_dir=str(folder / "ck"),
                experiment_name="t", experiment=SETTINGS, model=MODEL,
                training=training(STEPS, validate_every=8), weights=WEIGHTS, seed=11,
                device="cpu", fast_path=fast_path)


@pytest.fixture(scope="module")
def fp32(demo, tmp_path_factory) -> Path:
    """The plain run, on one torch thread as the tests' own runs are (`one_torch_thread` is not
    yet in force for a module's fixture; another thread count sums the gradients in another
    order)."""
    folder = tmp_path_factory.mktemp("fp32")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run(demo, folder)
    finally:
        torch.set_num_threads(threads)
    return folder


def test_bf16_trains_and_is_not_the_fp32_run(demo, fp32, tmp_path):
    run(demo, tmp_path, fast_path={"precision": "bf16"})
    exported = load_exported(tmp_path / "model.pt")
    assert exported["meta"]["fast_path"]["precision"] == "bf16"
    losses = pd.read_csv(tmp_path / "losses.csv")
    terms = ["g_rec", "g_tsf", "g_mask", "g_adv", "g_total", "d_real_loss", "d_fake_loss",
             "d_gp", "d_loss"]
    assert np.isfinite(losses[terms].to_numpy()).all()
    val = losses["val_masked_l1"].dropna().to_numpy()
    assert len(val) == 3 and val[-1] < 0.95 * val[0], val
    theirs = load_exported(fp32 / "model.pt")
    for name in ("G", "D"):
        assert any(not torch.equal(exported[name][k], theirs[name][k]) for k in theirs[name])


def test_loader_workers_make_the_inline_batches(demo, fp32, tmp_path):
    run(demo, tmp_path, fast_path={"loader_workers": 2})
    ours, theirs = load_exported(tmp_path / "model.pt"), load_exported(fp32 / "model.pt")
    for name in ("G", "D"):
        assert ours[name].keys() == theirs[name].keys()
        for key in ours[name]:
            assert torch.equal(ours[name][key], theirs[name][key]), f"{name}.{key}"
    assert (tmp_path / "losses.csv").read_bytes() == (fp32 / "losses.csv").read_bytes()


def test_head_boxes_made_on_the_host_are_the_losss_own():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 2, 5, stride=4), nn.Flatten())
    cond = torch.zeros(3, 4, 16, 16)
    cond[:, 3] = 1
    for i, (r, c) in enumerate(((2, 6), (9, 1))):  # frames 0 and 1 show a head, frame 2 none
        cond[i, 1, r:r + 4, c:c + 5] = 0.9
        cond[i, 3, r:r + 4, c:c + 5] = 0
    boxes = head_boxes(cond)
    assert boxes == [(2, 6, 6, 11), (9, 13, 1, 6), None]
    real, fake = torch.rand(3, 3, 16, 16), torch.rand(3, 3, 16, 16)
    own = face_loss(net, fake, real, cond)
    assert own > 0 and torch.equal(face_loss(net, fake, real, cond, boxes), own)

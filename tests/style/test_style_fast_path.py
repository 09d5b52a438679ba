"""The style-transfer CycleGAN on the trainer's fast path: a bf16 run trains (finite losses, the
cycle losses fall) and is really another arithmetic than fp32; DataLoader workers make exactly the
inline batches (the same weights, pools and history, bit for bit)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from shapepose.style.data import Domain
from shapepose.style.train import train_cyclegan
from shapepose.training import load_exported

from test_style import CPU, SEED, TINY, assert_identical, experiment, tiny_training, write_domain

pytestmark = pytest.mark.usefixtures("one_torch_thread")

STEPS = 30
# every fp32 region of the step runs: the gradient penalty, the alpha losses, Phi's distance
EXPERIMENT = dict(gp_weight=10.0, spectral_norm=True, label_smoothing=0.1, lambda_alpha_G=2.0,
                  lambda_alpha_F=2.0, lambda_resdist_G=1.0, lambda_resdist_F=1.0)


@pytest.fixture(scope="module")
def domains(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("style_fast")
    return {"x": write_domain(root / "x", 6, "flat", 1),
            "y": write_domain(root / "y", 6, "striped", 2),
            "x_val": write_domain(root / "x_val", 2, "flat", 3)}


def run(domains: dict, folder: Path, fast_path: dict | None = None):
    """A 30-step run on the ellipses, exported (last state) with its losses; returns the model."""
    training = tiny_training(STEPS, checkpoint_every=STEPS, validate_every=STEPS, val_images=2)
    trainer, model, _ = train_cyclegan(
        X=Domain(domains["x"], 32, "x"), Y=Domain(domains["y"], 32, "y"),
        X_val=Domain(domains["x_val"], 32, "x_val"), checkpoint_dir=folder / "ck", arch=TINY,
        exp=experiment(**EXPERIMENT), training=training, features=None, seed=SEED, device=CPU,
        fast_path=fast_path)
    trainer.export(folder / "model.pt", which="last")
    trainer.write_losses(folder / "losses.csv")
    return model


@pytest.fixture(scope="module")
def fp32(domains, tmp_path_factory):
    """The plain run, on one torch thread as the tests' own runs are (`one_torch_thread` is not
    yet in force for a module's fixture; another thread count sums the gradients in another
    order)."""
    folder = tmp_path_factory.mktemp("fp32")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return folder, run(domains, folder)
    finally:
        torch.set_num_threads(threads)


def test_bf16_trains_and_is_not_the_fp32_run(domains, fp32, tmp_path):
    run(domains, tmp_path, fast_path={"precision": "bf16"})
    exported = load_exported(tmp_path / "model.pt")
    assert exported["meta"]["fast_path"]["precision"] == "bf16"
    losses = pd.read_csv(tmp_path / "losses.csv")
    terms = ["G_total", "D_X", "D_Y", "gp_X", "gp_Y", "alpha_G", "alpha_F", "resdist_G",
             "resdist_F", "val_score"]
    assert np.isfinite(losses[terms].to_numpy(dtype=float)[-1]).all()
    assert np.isfinite(losses[terms[:-1]].to_numpy(dtype=float)).all()
    # it learns: the generators reconstruct through each other better than at the start
    cycle = (losses["cycle_A"] + losses["cycle_B"]).to_numpy()
    assert cycle[-5:].mean() < 0.85 * cycle[:5].mean(), cycle
    # bf16 really ran: no network ends with fp32's weights
    ours, theirs = exported, load_exported(fp32[0] / "model.pt")
    for name in ("G", "F", "D_X", "D_Y"):
        assert any(not torch.equal(ours[name][k], theirs[name][k]) for k in ours[name]), name


def test_loader_workers_make_the_inline_batches(domains, fp32, tmp_path):
    model = run(domains, tmp_path, fast_path={"loader_workers": 2})
    folder, inline = fp32
    for name, module in inline.modules.items():
        assert_identical(module.state_dict(), model.modules[name].state_dict(), name)
    assert_identical(inline.pool_x.state_dict(), model.pool_x.state_dict(), "pool_x")
    assert_identical(inline.pool_y.state_dict(), model.pool_y.state_dict(), "pool_y")
    assert (tmp_path / "losses.csv").read_bytes() == (folder / "losses.csv").read_bytes()

"""Neural Parts on the trainer's fast path: a bf16 run trains (finite losses, a better validation
IoU than its untrained weights) and is really another arithmetic than fp32, fp16 is refused;
DataLoader workers draw exactly the inline batches (the same weights, bit for bit); processes
that each take a slice of a batch get the frames and rows one process draws."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from shapepose.neural_parts import train
from shapepose.neural_parts.data import FrameCache, draw_batch, split_frames
from shapepose.training import load_exported

from helpers.configs import config_section
from test_neural_parts import TINY_MODEL, TINY_SPLIT, TINY_TRAINING, tiny_dataset  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_torch_thread")

STEPS = 10


def run(files, folder: Path, fast_path: dict | None = None) -> Path:
    """A 10-step run of the tests' tiny setup (2 primitives, batches of 2 frames)."""
    files = [f for f in files if f.sequence not in TINY_SPLIT["test_sequences"]]
    training = dict(TINY_TRAINING, steps=STEPS, checkpoint_every=STEPS, validate_every=STEPS,
                    log_every=2)
    train.train_neural_parts(
        sequences=[f.sequence for f in files], surface=[f.surface for f in files],
        volume=[f.volume for f in files], renders=[f.renders for f in files],
        out=str(folder / "model.pt"), losses_csv=str(folder / "losses.csv"),
        checkpoint_dir=str(folder / "ck"), n_primitives=2, seed=3, device="cpu",
        split=TINY_SPLIT, model=TINY_MODEL, losses=config_section("neural_parts.losses"),
        training=training, fast_path=fast_path)
    return folder


@pytest.fixture(scope="module")
def fp32(tiny_dataset, tmp_path_factory) -> Path:  # noqa: F811
    threads = torch.get_num_threads()  # one thread, as the tests (their fixture comes later)
    torch.set_num_threads(1)
    try:
        return run(tiny_dataset[1], tmp_path_factory.mktemp("np_fp32"))
    finally:
        torch.set_num_threads(threads)


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_exported(folder / "model.pt")["model"]


def test_bf16_trains_and_is_not_the_fp32_run(tiny_dataset, fp32, tmp_path):  # noqa: F811
    run(tiny_dataset[1], tmp_path, fast_path={"precision": "bf16"})
    exported = load_exported(tmp_path / "model.pt")
    assert exported["meta"]["fast_path"]["precision"] == "bf16"
    history = pd.read_csv(tmp_path / "losses.csv")
    totals = history["total"].dropna().to_numpy()
    assert np.isfinite(totals).all()
    ours, theirs = weights(tmp_path), weights(fp32)
    assert any(not torch.equal(ours[k], theirs[k]) for k in ours)
    # it learns: a better validation IoU than the weights it started from
    files = [f for f in tiny_dataset[1] if f.sequence not in TINY_SPLIT["test_sequences"]]
    val = train.evenly_spaced(split_frames(files, **TINY_SPLIT)["val"],
                              TINY_TRAINING["val_frames"])
    cache, cpu = FrameCache(TINY_MODEL["image_size"]), torch.device("cpu")
    with torch.no_grad():
        iou = {untrained: train.validation_iou(train.load_model(exported, cpu, untrained), val,
                                               cache, cpu)
               for untrained in (True, False)}
    assert iou[False] > iou[True] + 0.1, iou


def test_fp16_is_refused(tiny_dataset, tmp_path):  # noqa: F811
    with pytest.raises(ValueError, match="fp16 is not allowed"):
        run(tiny_dataset[1], tmp_path, fast_path={"precision": "fp16"})


def test_loader_workers_draw_the_inline_batches(tiny_dataset, fp32, tmp_path):  # noqa: F811
    run(tiny_dataset[1], tmp_path, fast_path={"loader_workers": 2})
    ours, theirs = weights(tmp_path), weights(fp32)
    assert ours.keys() == theirs.keys()
    for key in ours:
        assert torch.equal(ours[key], theirs[key]), key
    assert (tmp_path / "losses.csv").read_bytes() == (fp32 / "losses.csv").read_bytes()


def test_slices_of_a_batch_are_the_whole_batch(tiny_dataset):  # noqa: F811
    frames = split_frames(tiny_dataset[1], **TINY_SPLIT)["train"]
    kwargs = dict(seed=1, stage="np", step=5, batch_size=4, n_surface=50, n_volume=60,
                  n_sphere=10, radius=0.25)
    whole, sphere = draw_batch(frames, FrameCache(32), **kwargs)
    halves = [draw_batch(frames, FrameCache(32), part=part, **kwargs)
              for part in (slice(0, 2), slice(2, 4))]
    for key, value in whole.items():
        assert value.device.type == "cpu"
        assert torch.equal(torch.cat([half[key] for half, _ in halves]), value), key
    assert all(torch.equal(half_sphere, sphere) for _, half_sphere in halves)

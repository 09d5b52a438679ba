"""Several processes (DistributedDataParallel over gloo, launched by torchrun's launcher) against
one process at the same global batch: the weights must agree within floating-point tolerance, and
a checkpoint written by two processes must resume in one.

The oracle is the single-process run of the same toy (tests/helpers/train_toy.py, no dropout and
no global RNG): DDP averages the per-rank gradients of equal halves of the batch, which for a
batch-mean loss is the full batch's gradient, so only the order of additions differs.
"""

import torch
import pytest

from shapepose.training import load_exported
from shapepose.training.distributed import Distributed, launch, processes_for

from helpers.train_toy import ddp_toy_train

STEPS = 12


def weights(path):
    return load_exported(path)["model"]


def assert_close(a: dict, b: dict, atol=1e-6):
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=atol, msg=key)


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("single")
    ddp_toy_train(str(tmp / "ck"), str(tmp / "model.pt"), steps=STEPS)
    return tmp


def test_two_processes_equal_one_at_the_same_global_batch(tmp_path, single):
    result = launch(ddp_toy_train, dict(checkpoint_dir=str(tmp_path / "ck"),
                                        out=str(tmp_path / "model.pt"), steps=STEPS),
                    processes=2)
    assert result["step"] == STEPS
    two, one = weights(tmp_path / "model.pt"), weights(single / "model.pt")
    assert_close(two, one)
    # and the weights did move: the comparison is not between two untouched networks
    torch.manual_seed(7)  # ddp_toy_train's initial weights
    start = torch.nn.Linear(4, 16).weight.detach()
    assert (two["0.weight"] - start).abs().max() > 0.05
    meta = load_exported(tmp_path / "model.pt")["meta"]
    assert meta["world_size"] == 2
    # rank 0 alone wrote: one history, its losses the mean over both halves (= one process's)
    rows2 = (tmp_path / "model.csv").read_text().splitlines()
    rows1 = (single / "model.csv").read_text().splitlines()
    assert rows2[0] == rows1[0] and len(rows2) == len(rows1) == STEPS + 1
    for a, b in zip(rows2[1:], rows1[1:]):
        assert float(a.split(",")[1]) == pytest.approx(float(b.split(",")[1]), rel=1e-5)


def test_checkpoint_of_two_processes_resumes_in_one(tmp_path, single):
    ck = tmp_path / "ck"
    half = STEPS // 2
    launch(ddp_toy_train, dict(checkpoint_dir=str(ck), out=str(tmp_path / "half.pt"),
                               steps=half, checkpoint_every=half), processes=2)
    # the same run, longer: only max_steps differs, which is not part of a run's identity
    result = ddp_toy_train(str(ck), str(tmp_path / "model.pt"), steps=STEPS,
                           checkpoint_every=half)
    assert result["resumed_from"] == half
    assert_close(weights(tmp_path / "model.pt"), weights(single / "model.pt"))


def test_shard_and_process_count_errors():
    assert Distributed(rank=1, world_size=2).shard(8) == slice(4, 8)
    with pytest.raises(ValueError, match="not divisible by the 2 processes"):
        Distributed(rank=0, world_size=2).shard(5)
    assert processes_for(None) == processes_for(0) == processes_for(1) == 1
    assert processes_for(2) == 2
    with pytest.raises(ValueError, match="gpu must be an integer"):
        processes_for("two")

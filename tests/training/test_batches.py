"""Batches and per-step generators: one recipe for every trainer (shapepose.training.batches).

A loader must give different draws in different epochs and the same draws on a rerun; the
original NPT, Pose2Mesh and LWGAN loaders fix their "random" pairs once and repeat them.
"""

import subprocess
import sys

import numpy as np
import pytest
import torch

from shapepose.seeding import derive_rng, derive_seed, stable_hash
from shapepose.training.batches import epoch_walk, step_generator, step_rng, steps_per_epoch
from shapepose.training.rng import derive_torch_generator


def walk(n, batch, steps, *labels, seed=11):
    return np.concatenate([epoch_walk(n, batch, s, seed, *labels) for s in range(steps)])


def test_every_example_once_per_epoch_in_a_new_order_each_epoch():
    n, batch = 7, 3
    order = walk(n, batch, 14, "style_transfer", "synthetic")
    epochs = order.reshape(6, n)  # 14 steps of 3 = 42 positions = 6 epochs of 7
    for epoch in epochs:
        assert sorted(epoch.tolist()) == list(range(n))
    assert len({tuple(e) for e in epochs}) == 6  # no epoch repeats another's order
    # the recipe written out: epoch e's order is derive_rng(seed, *labels, "epoch", e)'s permutation
    for e in range(6):
        expected = derive_rng(11, "style_transfer", "synthetic", "epoch", e).permutation(n)
        np.testing.assert_array_equal(epochs[e], expected)


def test_a_rerun_draws_the_same_batches_and_other_labels_other_ones():
    a = walk(10, 4, 9, "shape_pose", "models")
    assert np.array_equal(a, walk(10, 4, 9, "shape_pose", "models"))
    for step in range(9):  # a resumed run asks for one step alone and gets the same batch
        assert np.array_equal(epoch_walk(10, 4, step, 11, "shape_pose", "models"),
                              a[step * 4:(step + 1) * 4])
    assert not np.array_equal(a, walk(10, 4, 9, "neural_parts", "frames"))
    assert not np.array_equal(a, walk(10, 4, 9, "shape_pose", "models", seed=12))


def test_a_batch_larger_than_the_dataset_covers_whole_epochs():
    batch = epoch_walk(3, 7, 0, 5, "segmentation", "photos")
    assert sorted(batch[:6].tolist()) == [0, 0, 1, 1, 2, 2] and steps_per_epoch(3, 7) == 1


def test_walk_needs_labels_and_examples():
    with pytest.raises(ValueError, match="labels"):
        epoch_walk(5, 2, 0, 1)
    with pytest.raises(ValueError, match="at least one"):
        epoch_walk(0, 2, 0, 1, "x")


def test_step_generators_differ_by_step_and_repeat_on_a_rerun():
    draws = [torch.rand(5, generator=step_generator(3, s, "style_transfer")) for s in range(3)]
    assert not torch.equal(draws[0], draws[1]) and not torch.equal(draws[1], draws[2])
    assert torch.equal(draws[1], torch.rand(5, generator=step_generator(3, 1, "style_transfer")))
    assert not torch.equal(draws[1], torch.rand(5, generator=step_generator(3, 1, "shape_pose")))
    np.testing.assert_array_equal(step_rng(3, 4, "neural_parts", "points").random(3),
                                  derive_rng(3, "neural_parts", "points", "step", 4).random(3))


def test_derive_seed_is_the_documented_two_words_and_stable_across_processes():
    words = [9, stable_hash("style_transfer"), stable_hash("init")]
    low, high = np.random.SeedSequence(words).generate_state(2, np.uint32)
    assert derive_seed(9, "style_transfer", "init") == ((int(high) << 32) | int(low)) & (2**63 - 1)
    expected = torch.Generator().manual_seed(derive_seed(9, "a", 2)).initial_seed()
    assert derive_torch_generator(9, "a", 2).initial_seed() == expected
    code = "from shapepose.seeding import derive_seed; print(derive_seed(9, 'style_transfer', 'init'))"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True, env={"PYTHONHASHSEED": "7", "PATH": ""}).stdout
    assert int(other) == derive_seed(9, "style_transfer", "init")


@pytest.mark.parametrize("label", [-1, 1.5, True, None])
def test_labels_are_text_or_non_negative_integers(label):
    with pytest.raises(ValueError, match="labels"):
        derive_rng(1, "stage", label)


def test_no_stream_is_named_by_a_bare_integer():
    """Every derive_rng / step generator in the package names its stage and purpose in text."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "shapepose"
    offenders = []
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "attr", getattr(node.func, "id", ""))
            if name == "default_rng" and node.args and not (
                    isinstance(node.args[0], ast.Call)
                    and getattr(node.args[0].func, "attr", "") == "SeedSequence"
                    and path.name == "seeding.py"):
                offenders.append(f"{path.relative_to(root)}:{node.lineno} default_rng")
            if name == "SeedSequence" and path.name != "seeding.py":
                offenders.append(f"{path.relative_to(root)}:{node.lineno} SeedSequence")
            # style/features.py: the random ResNet standing in for ImageNet weights is one fixed
            # network for every seed and experiment (a stand-in for a file, not a draw)
            if name == "manual_seed" and path.name not in ("seeding.py", "rng.py", "model.py",
                                                           "features.py"):
                offenders.append(f"{path.relative_to(root)}:{node.lineno} manual_seed")
    assert offenders == []

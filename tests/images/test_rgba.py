"""The shared RGBA helpers: reader, colour correction, premultiplied resize, mask disagreement."""

import numpy as np
import pytest
from PIL import Image

from shapepose.errors import InputError
from shapepose.images.rgba import colour_correct, mask_disagreement, read_photo, read_rgba, resize_rgba


def test_readers_give_uint8_rgba_and_rgb_and_name_the_bad_file(tmp_path):
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    Image.fromarray(gray, mode="L").save(tmp_path / "gray.png")
    rgba = read_rgba(tmp_path / "gray.png")
    assert rgba.shape == (3, 4, 4) and rgba.dtype == np.uint8
    assert (rgba[..., 3] == 255).all() and all(np.array_equal(rgba[..., c], gray) for c in range(3))
    rgb = read_photo(tmp_path / "gray.png")
    assert rgb.shape == (3, 4, 3) and np.array_equal(rgb, rgba[..., :3])
    (tmp_path / "bad.png").write_bytes(b"\x89PNG truncated")
    with pytest.raises(InputError, match=r"bad\.png.*cannot read render"):
        read_rgba(tmp_path / "bad.png", what="render")
    with pytest.raises(InputError, match=r"bad\.png.*cannot read photo"):
        read_photo(tmp_path / "bad.png")


def test_colour_correct_by_hand():
    rgba = np.array([[[0, 0, 0, 255], [9, 8, 7, 0], [0, 0, 0, 3]],
                     [[0, 5, 0, 255], [0, 0, 0, 0], [200, 100, 50, 128]]], np.uint8)
    out = colour_correct(rgba)
    expected = np.array([[[1, 1, 1, 255], [0, 0, 0, 0], [1, 1, 1, 3]],
                         [[0, 5, 0, 255], [0, 0, 0, 0], [200, 100, 50, 128]]], np.uint8)
    assert out.dtype == np.uint8 and np.array_equal(out, expected)
    assert np.array_equal(colour_correct(out), out)  # idempotent


def test_resize_is_the_premultiplied_block_mean():
    rng = np.random.default_rng(3)
    rgba = rng.integers(0, 256, (12, 12, 4), dtype=np.uint8)
    rgba[:6, :6, 3] = 0  # one fully transparent output pixel at (0, 0) .. (1, 1)
    out = resize_rgba(rgba, 4)
    # by hand: 3 x 3 blocks; alpha is the block mean, colour the alpha-weighted block mean
    a = rgba[..., 3].astype(np.float64) / 255.0
    blocks = lambda x: x.reshape(4, 3, 4, 3).mean(axis=(1, 3))  # noqa: E731
    alpha = blocks(a)
    premultiplied = np.stack([blocks(rgba[..., c] * a) for c in range(3)], -1)
    colour = premultiplied / np.where(alpha > 0, alpha, 1)[..., None]
    assert np.array_equal(out[..., 3], np.rint(alpha * 255).astype(np.uint8))
    assert (np.abs(out[..., :3].astype(int) - np.rint(colour)) <= 1).all()
    assert (out[:2, :2] == 0).all()


def _by_hand(a, b, per):
    """The definition, written out independently: count of logical XOR over the chosen area."""
    return np.logical_xor(a, b).sum() / per


def test_mask_disagreement_against_the_definition():
    a = np.array([[1, 1, 0, 0], [1, 0, 0, 1], [0, 0, 0, 0]], bool)
    b = np.array([[1, 0, 0, 0], [1, 1, 0, 0], [0, 0, 1, 0]], bool)
    # a XOR b is true at (0, 1), (1, 1), (1, 3), (2, 2): 4 of 12 pixels; b has 4 pixels
    assert mask_disagreement(a, b) == pytest.approx(4 / 12)
    assert mask_disagreement(a, b, relative_to="reference") == pytest.approx(1.0)
    assert mask_disagreement(b, a, relative_to="reference") == pytest.approx(4 / 4)
    rng = np.random.default_rng(0)
    x, y = rng.random((2, 5, 7, 9)) < 0.4
    image = mask_disagreement(x, y)
    reference = mask_disagreement(x, y, relative_to="reference")
    assert image.shape == reference.shape == (5,)
    for i in range(5):
        assert image[i] == _by_hand(x[i], y[i], 7 * 9)  # exact: the same integer division
        assert reference[i] == _by_hand(x[i], y[i], y[i].sum())


def test_mask_disagreement_refuses_what_is_undefined():
    a = np.ones((3, 3), bool)
    with pytest.raises(ValueError, match="no pixel"):
        mask_disagreement(a, np.zeros_like(a), relative_to="reference")
    assert mask_disagreement(a, np.zeros_like(a)) == 1.0  # over the image, an empty mask is fine
    with pytest.raises(ValueError, match="shape"):
        mask_disagreement(a, np.ones((3, 4), bool))
    with pytest.raises(ValueError, match="relative_to"):
        mask_disagreement(a, a, relative_to="union")


def test_style_transfer_validation_share_is_the_torch_mean_bit_for_bit():
    """The trainer's float32 shares equal what a float32 mean of the mismatches gave before."""
    import torch

    from shapepose.style.losses import alpha_mask
    from shapepose.style.train import alpha_disagreement

    gen = torch.Generator().manual_seed(0)
    for size in (7, 32, 64):
        x, stylized = (torch.where(torch.rand(6, 1, size, size, generator=gen) < 0.5, -1.0,
                                   torch.rand(6, 3, size, size, generator=gen) * 2 - 1) for _ in range(2))
        direct = (alpha_mask(x) != alpha_mask(stylized)).float().flatten(1).mean(dim=1)
        shares = alpha_disagreement(x, stylized)
        assert shares.dtype == torch.float32 and torch.equal(shares, direct)

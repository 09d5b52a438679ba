"""The three-stream generator, the Liquid Warping Block and the discriminator: sizes and warping."""

import numpy as np
import torch

from shapepose.lwgan.flow import identity_grid
from shapepose.lwgan.model import (LiquidWarpingGenerator, PatchDiscriminator, ResUnetStream,
                                   build_discriminator, build_generator, compose, warp)
from shapepose.training import count_parameters


def grid(size, batch=2):
    return torch.from_numpy(identity_grid(size)).float()[None].expand(batch, -1, -1, -1)


def test_identity_flow_is_a_no_op_at_every_level():
    torch.manual_seed(0)
    for size in (64, 32, 16, 8):
        features = torch.randn(2, 5, size, size)
        torch.testing.assert_close(warp(features, grid(64)), features, atol=1e-5, rtol=0)


def test_shifted_flow_shifts_the_features():
    torch.manual_seed(1)
    features = torch.randn(1, 3, 16, 16)
    flow = grid(64, 1).clone()
    flow[..., 0] -= 3 * 2 / 16  # sample 3 coarse pixels to the left: features move right
    out = warp(features, flow)
    torch.testing.assert_close(out[..., 3:], features[..., :-3], atol=1e-5, rtol=0)
    assert torch.all(out[..., :2] == 0)  # sampled outside: zeros padding
    flow[...] = -2.0  # INVALID everywhere
    assert torch.all(warp(features, flow) == 0)


def test_original_sizes_and_parameter_count():
    """The original's ImpersonatorGenerator(bg_dim=4, src_dim=6, tsf_dim=6, conv_dim=64,
    repeat_num=6) has, per stream, bias-free convs and affine instance norms; counted by hand."""
    g = LiquidWarpingGenerator(cond_channels=3, conv_dim=64, n_blocks=6, n_down=3)

    def conv(c_in, c_out, k):
        return c_in * c_out * k * k

    def norm(c):
        return 2 * c

    enc = lambda c_in: (conv(c_in, 64, 7) + norm(64) + conv(64, 128, 3) + norm(128)
                        + conv(128, 256, 3) + norm(256) + conv(256, 512, 3) + norm(512))
    res = 6 * 2 * (conv(512, 512, 3) + norm(512))
    up = sum(conv(c, c // 2, 3) + norm(c // 2) for c in (512, 256, 128))
    skip = sum(conv(c, c // 2, 3) + norm(c // 2) for c in (512, 256, 128))
    bg = enc(4) + res + up + conv(64, 3, 7)
    unet = lambda c_in: enc(c_in) + res + up + skip + conv(64, 3, 7) + conv(64, 1, 7)
    assert count_parameters(g.background) == bg
    assert count_parameters(g.source) == unet(6)
    assert count_parameters(g) == bg + 2 * unet(6)


def test_generator_outputs_and_composition():
    torch.manual_seed(2)
    g = build_generator(cond_channels=4, conv_dim=4, n_blocks=2, n_down=3)
    out = g(torch.randn(2, 4, 64, 64), torch.randn(2, 7, 64, 64), torch.randn(2, 7, 64, 64),
            grid(64))
    for key in ("background", "src_image", "tsf_image", "src_colour", "tsf_colour"):
        assert out[key].shape == (2, 3, 64, 64) and out[key].abs().max() <= 1
    a = out["tsf_attention"]
    assert a.shape == (2, 1, 64, 64) and 0 <= a.min() and a.max() <= 1
    torch.testing.assert_close(out["tsf_image"], a * out["background"] + (1 - a) * out["tsf_colour"])
    assert torch.equal(compose(torch.ones_like(a), out["background"], out["tsf_colour"]),
                       out["background"])


def test_the_transfer_stream_sees_the_source_through_the_block():
    """Changing the source image changes the transfer output only through the warp: with every
    flow pixel INVALID, the transfer stream no longer depends on the source."""
    torch.manual_seed(3)
    g = build_generator(cond_channels=4, conv_dim=4, n_blocks=1, n_down=3).eval()
    bg, tsf = torch.randn(1, 4, 64, 64), torch.randn(1, 7, 64, 64)
    s1, s2 = torch.randn(1, 7, 64, 64), torch.randn(1, 7, 64, 64)
    invalid = torch.full((1, 64, 64, 2), -2.0)
    a, b = g(bg, s1, tsf, invalid)["tsf_colour"], g(bg, s2, tsf, invalid)["tsf_colour"]
    assert torch.equal(a, b)
    c = g(bg, s2, tsf, grid(64, 1))["tsf_colour"]
    assert not torch.allclose(a, c)


def test_discriminator_patches_and_spectral_norm():
    d = PatchDiscriminator(7, 64, 4)
    assert d(torch.zeros(1, 7, 256, 256)).shape == (1, 1, 14, 14)  # the original at 256 px
    small = build_discriminator(7, 8, 3, spectral_norm=True)
    assert small(torch.zeros(2, 7, 64, 64)).shape == (2, 1, 6, 6)
    convs = [m for m in small.net if isinstance(m, torch.nn.Conv2d)]
    assert all(hasattr(m, "parametrizations") for m in convs)
    small.eval()
    for m in convs:  # every weight's largest singular value is ~1
        w = m.weight.detach().flatten(1).numpy()
        assert abs(np.linalg.svd(w, compute_uv=False)[0] - 1) < 0.3


def test_resunet_alone():
    s = ResUnetStream(7, 4, 1, 3)
    colour, attention = s(torch.randn(1, 7, 32, 32))
    assert colour.shape == (1, 3, 32, 32) and attention.shape == (1, 1, 32, 32)

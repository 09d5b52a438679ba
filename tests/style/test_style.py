"""The style-transfer stage (shapepose.style): networks, losses, stabilizers, pool, schedule, trainer.

Oracles: parameter counts summed by hand from the layer list; every loss value worked out by hand
on tiny tensors with stub networks; the spectral norm against an SVD; the gradient penalty of a
linear critic in closed form and of a PatchGAN against its full Jacobian (the reference code's
summed patch map); the image pool by conservation of images; the learning-rate schedule by hand;
batches by counting; resume against an uninterrupted run, bit for bit.
"""

import math
import os
import signal
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from shapepose.style.data import Domain, ImageRef
from shapepose.style.losses import (
    ALPHA_THRESHOLD, PRETANH_EPS, LossWeights, alpha_loss, alpha_mask, alpha_straight_through,
    critic_gradient_norms, generator_terms, gradient_penalty,
    lsgan_discriminator, lsgan_generator, mean_abs, squared_l1, to_signed, to_uint8)
from shapepose.style.networks import build_discriminator, build_generator
from shapepose.training import count_parameters
from shapepose.style.pool import ImagePool
from shapepose.style.train import (
    Architecture, CycleGAN, Experiment, alpha_disagreement, generate, train_cyclegan)
from shapepose.training import SIGTERM_EXIT_STATUS, TrainingError
from shapepose.training.checkpoint import read_checkpoint

from helpers.configs import config_section

CPU = torch.device("cpu")
SEED = 7


def experiment(**changes) -> Experiment:
    """config.yaml's style_transfer.defaults with a test's changes."""
    return Experiment.from_config(config_section("style_transfer.defaults", **changes))


def loss_weights(**changes) -> LossWeights:
    return experiment(**changes).loss_weights
TINY = Architecture(ngf=4, ndf=4, n_blocks=1, image_size=32)


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny networks: one thread is faster


# ---- networks -------------------------------------------------------------------------------

def conv_parameters(k: int, c_in: int, c_out: int) -> int:
    """Weights and biases of one k x k convolution (transposed or not)."""
    return k * k * c_in * c_out + c_out


def generator_layers(ngf: int, n_blocks: int) -> list[tuple[int, int, int]]:
    """(kernel, c_in, c_out) of the ResNet generator, read off seed 002 section 4.2."""
    layers = [(7, 3, ngf), (3, ngf, 2 * ngf), (3, 2 * ngf, 4 * ngf)]
    layers += [(3, 4 * ngf, 4 * ngf)] * (2 * n_blocks)
    layers += [(3, 4 * ngf, 2 * ngf), (3, 2 * ngf, ngf), (7, ngf, 3)]
    return layers


def discriminator_layers(ndf: int) -> list[tuple[int, int, int]]:
    """(kernel, c_in, c_out) of the 70 x 70 PatchGAN (seed 002 section 4.3)."""
    return [(4, 3, ndf), (4, ndf, 2 * ndf), (4, 2 * ndf, 4 * ndf), (4, 4 * ndf, 8 * ndf),
            (4, 8 * ndf, 1)]


def hand_count(layers: list[tuple[int, int, int]]) -> int:
    return sum(conv_parameters(*layer) for layer in layers)


def numel(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_hand_counts_are_the_stock_cyclegan_numbers():
    # the oracle itself: stock resnet_9blocks and basic PatchGAN at width 64
    assert hand_count(generator_layers(64, 9)) == 11_378_179
    assert hand_count(discriminator_layers(64)) == 2_764_737


@pytest.mark.parametrize("width, blocks", [(64, 9), (12, 3)])
def test_parameter_counts_match_the_layer_list(width, blocks):
    G = build_generator(width, blocks)
    D = build_discriminator(width, spectral_norm=False)
    D_sn = build_discriminator(width, spectral_norm=True)
    assert numel(G) == count_parameters(G) == hand_count(generator_layers(width, blocks))
    assert numel(D) == count_parameters(D) == hand_count(discriminator_layers(width))
    # spectral norm adds power-iteration buffers, never parameters
    assert numel(D_sn) == count_parameters(D_sn) == numel(D)
    assert sum(1 for name, _ in D_sn.named_buffers() if name.endswith("_u")) == 5


@pytest.mark.parametrize("size, scores", [(256, 30), (128, 14)])
def test_discriminator_patch_grid(size, scores):
    D = build_discriminator(4, spectral_norm=False)
    with torch.no_grad():
        out = D(torch.rand(2, 3, size, size) * 2 - 1)
    assert out.shape == (2, 1, scores, scores)


@pytest.mark.parametrize("size", [32, 48])
def test_generator_keeps_the_size_and_stays_in_range(size):
    G = build_generator(8, 2)
    with torch.no_grad():
        G.net[-2].weight.mul_(300.0)  # drive the tanh into saturation at both ends
        out = G(torch.randn(2, 3, size, size) * 3)
    assert out.shape == (2, 3, size, size)
    assert float(out.min()) >= -1.0 and float(out.max()) <= 1.0
    assert float(out.min()) < -0.99 and float(out.max()) > 0.99  # the bound was exercised
    with pytest.raises(ValueError, match="multiples of 4"):
        G(torch.zeros(1, 3, 30, 32))


def test_spectral_norm_keeps_the_largest_singular_value_at_one():
    torch.manual_seed(0)
    plain = build_discriminator(16, spectral_norm=False)
    D = build_discriminator(16, spectral_norm=True).train()
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    for _ in range(20):
        D(x)  # one power iteration per forward pass in train mode

    def sigmas(net):
        with torch.no_grad():
            return [float(torch.linalg.matrix_norm(m.weight.reshape(m.weight.shape[0], -1), ord=2))
                    for m in net.modules() if isinstance(m, nn.Conv2d)]

    normalized = sigmas(D)
    assert len(normalized) == 5
    assert all(abs(s - 1.0) < 0.02 for s in normalized), normalized
    assert any(abs(s - 1.0) > 0.1 for s in sigmas(plain))  # N(0, 0.02) weights are not at 1


# ---- losses ---------------------------------------------------------------------------------

def scores(values) -> torch.Tensor:
    """Four patch scores as a (1, 1, 2, 2) grid."""
    return torch.tensor(values, dtype=torch.float32).view(1, 1, 2, 2)


def test_lsgan_terms_by_hand():
    real, fake = scores([1.0, 0.5, 0.0, 2.0]), scores([0.0, 1.0, -1.0, 0.5])
    # real: (0 + 0.25 + 1 + 1) / 4 = 0.5625; fake: (0 + 1 + 1 + 0.25) / 4 = 0.5625; each halved
    assert float(lsgan_discriminator(real, fake)) == pytest.approx(0.28125 + 0.28125)
    # label 0.9: (0.01 + 0.16 + 0.81 + 1.21) / 4 = 0.5475, halved 0.27375; fakes keep label 0
    assert float(lsgan_discriminator(real, fake, real_label=0.9)) == pytest.approx(0.27375 + 0.28125)
    # (1 - D)^2 over the fake scores: (1 + 0 + 4 + 0.25) / 4
    assert float(lsgan_generator(fake)) == pytest.approx(1.3125)


def test_mean_abs_and_squared_l1_by_hand():
    a = torch.zeros(2, 1, 2, 2)
    b = torch.tensor([[1.0, -3.0, 0.0, 2.0], [0.5, 0.5, 0.5, 0.5]]).view(2, 1, 2, 2)
    # elementwise mean over the batch: (6 + 2) / 8
    assert float(mean_abs(a, b)) == pytest.approx(1.0)
    # per sample: 6 / 4 = 1.5 and 2 / 4 = 0.5; squared 2.25 and 0.25; batch mean 1.25
    assert float(squared_l1(a, b)) == pytest.approx(1.25)


def test_alpha_mask_threshold_any_channel():
    nothing = -1.0
    values = [nothing, -1 + 0.5 / 255, -1 + 2 / 255, 0.0]
    x = torch.full((1, 3, 1, 4), nothing)
    for pixel, value in enumerate(values):
        x[0, pixel % 3, 0, pixel] = value  # a different channel each time: any channel counts
    assert alpha_mask(x).flatten().tolist() == [0.0, 0.0, 1.0, 1.0]
    assert alpha_mask(x).shape == (1, 1, 1, 4)


def test_alpha_straight_through_value_and_gradient():
    # three pixels, no ties: max channel 1 (-0.5), channel 1 (-0.999, nothing), channel 0 (0.7)
    pixels = [[-1.0, -0.5, -0.9], [-1.0, -0.999, -0.9995], [0.7, 0.3, -0.2]]
    x = torch.tensor(pixels).T.reshape(1, 3, 1, 3).clone().requires_grad_(True)
    out = alpha_straight_through(x)
    assert out.flatten().tolist() == [1.0, 0.0, 1.0]  # exactly the hard mask
    out.sum().backward()
    expected = torch.zeros(1, 3, 1, 3)
    for pixel, channel in enumerate([1, 1, 0]):
        expected[0, channel, 0, pixel] = 0.5  # d/dx of (max_c x + 1) / 2
    assert torch.equal(x.grad, expected)


THESIS_FORM = {"alpha_norm": "squared_l1", "alpha_surrogate": "linear"}


def alpha_batches() -> tuple[torch.Tensor, torch.Tensor]:
    """float64 (2, 3, 2, 2) target and generated batches; no two channels of a pixel tie and no
    generated brightest channel lies at a kink of the hinge (2.5 either side of the threshold)."""
    target = torch.full((2, 3, 2, 2), -1.0, dtype=torch.float64)
    target[0, 1, 0, 0] = 0.2     # sample 0: something at (0, 0) and (1, 1)
    target[0, 2, 1, 1] = -0.6
    target[1, 0] = 0.5           # sample 1: something everywhere but (0, 1)
    target[1, 0, 0, 1] = -1.0
    generated = torch.tensor(
        [[[[-0.90, -0.9995], [-0.992, -0.999]], [[-0.30, -0.9999], [-0.998, -0.997]],
          [[-0.95, -0.99999], [-0.9993, -0.9970]]],
         [[[0.40, -0.9990], [-0.99995, -0.60]], [[0.10, -0.9992], [-0.99991, -0.70]],
          [[-0.20, -0.9998], [-0.99996, -0.80]]]], dtype=torch.float64)
    return target, generated


def numpy_alpha(x: np.ndarray) -> np.ndarray:
    """The thesis's Alpha by hand: (B, 3, H, W) -> (B, H, W), 1 where any channel is > t."""
    return (x.max(axis=1) > ALPHA_THRESHOLD).astype(np.float64)


@pytest.mark.parametrize("surrogate", ["linear", "sigmoid", "hinge"])
@pytest.mark.parametrize("norm", ["squared_l1", "l1"])
def test_alpha_loss_value_is_the_norm_of_the_hard_masks(norm, surrogate):
    target, generated = alpha_batches()
    a, b = numpy_alpha(target.numpy()), numpy_alpha(generated.numpy())
    assert a.tolist() == [[[1, 0], [0, 1]], [[1, 0], [1, 1]]]
    assert b.tolist() == [[[1, 0], [1, 0]], [[1, 0], [0, 1]]]
    per_sample = np.abs(a - b).reshape(2, -1).mean(axis=1)          # 2/4 and 1/4
    expected = {"squared_l1": np.mean(per_sample ** 2), "l1": np.mean(per_sample)}[norm]
    got = alpha_loss(target, generated.clone().requires_grad_(True), norm, surrogate,
                     temperature=0.005, margin=2.5)
    assert float(got.detach()) == pytest.approx(expected, abs=1e-15)  # 0.15625 or 0.375
    assert got.requires_grad


def test_alpha_sigmoid_surrogate_gradient_is_the_soft_alphas():
    _, x = alpha_batches()
    T = 0.005
    weights = torch.linspace(-1.0, 2.0, 8, dtype=torch.float64).reshape(2, 1, 2, 2)
    leaf = x.clone().requires_grad_(True)
    out = alpha_straight_through(leaf, "sigmoid", T)
    assert torch.equal(out.detach(), alpha_mask(x))                 # the forward is the step
    (weights * out).sum().backward()

    def soft(v: np.ndarray) -> np.ndarray:                          # sigmoid((max_c x - t) / T)
        return 1.0 / (1.0 + np.exp(-(v.max(axis=1) - ALPHA_THRESHOLD) / T))

    base, w, h = x.numpy(), weights.numpy()[:, 0], 1e-7
    expected = np.zeros_like(base)
    for index in np.ndindex(base.shape):
        up, down = base.copy(), base.copy()
        up[index] += h
        down[index] -= h
        expected[index] = np.sum(w * (soft(up) - soft(down))) / (2 * h)
    assert np.abs(expected).max() > 1.0                             # the test has teeth
    np.testing.assert_allclose(leaf.grad.numpy(), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("norm", ["squared_l1", "l1"])
def test_alpha_hinge_surrogate_gradient_is_the_hinges_norm(norm):
    target, x = alpha_batches()
    margin = 2.5
    leaf = x.clone().requires_grad_(True)
    alpha_loss(target, leaf, norm, "hinge", temperature=0.005, margin=margin).backward()
    z_t, a = np.arctanh(ALPHA_THRESHOLD), numpy_alpha(target.numpy())

    def soft(v: np.ndarray) -> float:
        """norm(hinge, 0): relu(z - (z_t - margin)) where Alpha(target) is 0, relu(z_t + margin
        - z) where it is 1, z = atanh(max_c x) clamped 1e-6 inside (-1, 1)."""
        z = np.arctanh(np.clip(v.max(axis=1), -1 + PRETANH_EPS, 1 - PRETANH_EPS))
        hinge = np.where(a > 0, np.maximum(z_t + margin - z, 0), np.maximum(z - z_t + margin, 0))
        per_sample = hinge.reshape(2, -1).mean(axis=1)
        return float(np.mean(per_sample ** 2) if norm == "squared_l1" else np.mean(per_sample))

    base, h = x.numpy(), 1e-9
    expected = np.zeros_like(base)
    for index in np.ndindex(base.shape):
        up, down = base.copy(), base.copy()
        up[index] += h
        down[index] -= h
        expected[index] = (soft(up) - soft(down)) / (2 * h)
    assert np.count_nonzero(expected) >= 4                          # pixels inside the margin
    np.testing.assert_allclose(leaf.grad.numpy(), expected, rtol=1e-5, atol=1e-8)


def test_alpha_form_names_are_checked_and_the_real_config_uses_the_thesiss():
    with pytest.raises(ValueError, match="alpha_norm"):
        experiment(alpha_norm="l2")
    with pytest.raises(ValueError, match="alpha_surrogate"):
        experiment(alpha_surrogate="tanh")
    real = config_section("style_transfer.defaults", "workflow/configs/cars.yaml")
    assert {k: real[k] for k in THESIS_FORM} == THESIS_FORM


def test_uint8_signed_round_trip():
    values = torch.arange(256, dtype=torch.uint8).view(1, 16, 16, 1).expand(1, 16, 16, 3)
    signed = to_signed(values)
    assert signed.shape == (1, 3, 16, 16)
    assert float(signed.min()) == -1.0 and float(signed.max()) == 1.0
    assert torch.equal(to_uint8(signed), values)


class ConstantCritic(nn.Module):
    """Scores every image `value` on a 2 x 2 patch grid."""

    def __init__(self, value: float):
        super().__init__()
        self.value = value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.full((x.shape[0], 1, 2, 2), self.value)


def stub_batches() -> tuple[torch.Tensor, torch.Tensor]:
    """x: sample 0 is nothing but one white pixel, sample 1 is grey 0; y: 0.4 and nothing."""
    x = torch.full((2, 3, 2, 2), -1.0)
    x[0, :, 0, 0] = 1.0
    x[1] = 0.0
    y = torch.full((2, 3, 2, 2), -1.0)
    y[0] = 0.4
    return x, y


def test_generator_terms_by_hand():
    x, y = stub_batches()
    half = lambda t: 0.5 * t  # noqa: E731 (G and F)
    w = LossWeights(lambda_A=10, lambda_B=8, lambda_idt=0.1, lambda_alpha_G=3, lambda_alpha_F=5,
                    lambda_resdist_G=1.75, lambda_resdist_F=1.25, alpha_temperature=0.005,
                    alpha_margin=2.5, **THESIS_FORM)
    terms, images = generator_terms(x, y, half, half, ConstantCritic(0.5), ConstantCritic(0.25), w,
                                    phi=lambda t: 2 * t)
    # mean |x| = (12 * 1 + 12 * 0) / 24 = 0.5, mean |y| = (12 * 0.4 + 12 * 1) / 24 = 0.7
    expected = {
        "gan_G": (1 - 0.25) ** 2,           # D_Y scores G(x)
        "gan_F": (1 - 0.5) ** 2,            # D_X scores F(y)
        "cycle_A": 10 * 0.75 * 0.5,         # |x - x/4| = 0.75 |x|
        "cycle_B": 8 * 0.75 * 0.7,
        "idt_G": 8 * 0.1 * 0.5 * 0.7,       # lambda_B lambda_idt |y - G(y)|
        "idt_F": 10 * 0.1 * 0.5 * 0.5,      # lambda_A lambda_idt |x - F(x)|
        # Alpha(x) = [1 0 0 0], [1 1 1 1]; G(x) = x / 2 is all "something": per sample 3/4 and 0
        "alpha_G": 3 * ((0.75 ** 2 + 0 ** 2) / 2),
        # Alpha(y) = [1 1 1 1], [0 0 0 0]; F(y) = y / 2 is all "something": per sample 0 and 1
        "alpha_F": 5 * ((0 ** 2 + 1 ** 2) / 2),
        # |Phi(x) - Phi(G(x))| = |2x - x| = |x|: per sample 1 and 0
        "resdist_G": 1.75 * ((1 ** 2 + 0 ** 2) / 2),
        # |2y - y| = |y|: per sample 0.4 and 1
        "resdist_F": 1.25 * ((0.4 ** 2 + 1 ** 2) / 2),
    }
    expected["total"] = sum(expected.values())
    assert expected["total"] == pytest.approx(14.23625)
    assert terms.keys() == expected.keys()
    for name, value in expected.items():
        assert float(terms[name]) == pytest.approx(value, abs=1e-6), name
    assert torch.equal(images["fake_y"], 0.5 * x) and torch.equal(images["fake_x"], 0.5 * y)
    assert torch.equal(images["rec_x"], 0.25 * x) and torch.equal(images["rec_y"], 0.25 * y)


def test_generator_terms_skip_zero_weights_and_need_phi():
    x, y = stub_batches()
    half = lambda t: 0.5 * t  # noqa: E731
    critics = (ConstantCritic(0.5), ConstantCritic(0.25))
    terms, _ = generator_terms(x, y, half, half, *critics, loss_weights(lambda_idt=0.0))
    assert set(terms) == {"gan_G", "gan_F", "cycle_A", "cycle_B", "total"}
    assert float(terms["total"]) == pytest.approx(0.5625 + 0.25 + 3.75 + 5.25, abs=1e-6)
    with pytest.raises(ValueError, match="feature extractor"):
        generator_terms(x, y, half, half, *critics, loss_weights(lambda_resdist_F=1.0))


# ---- gradient penalty -----------------------------------------------------------------------

class LinearCritic(nn.Module):
    """D(x) = <w_p, x> + b for each of P patches: (B, 3, 2, 2) -> (B, 1, 1, P)."""

    def __init__(self, *weights: torch.Tensor, bias: float = 0.3):
        super().__init__()
        self.w = nn.Parameter(torch.stack(weights))  # (P, 3, 2, 2)
        self.b = nn.Parameter(torch.tensor(bias))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (torch.einsum("bchw,pchw->bp", x, self.w) + self.b)[:, None, None, :]


def weight(*leading: float) -> torch.Tensor:
    w = torch.zeros(12)
    w[: len(leading)] = torch.tensor(leading)
    return w.view(3, 2, 2)


@pytest.mark.parametrize("mix_seed", [0, 1, 2])
def test_gradient_penalty_of_a_linear_critic(mix_seed):
    critic = LinearCritic(weight(2.0, 2.0, 1.0))  # |w| = 3: penalty (3 - 1)^2 = 4
    torch.manual_seed(10 + mix_seed)
    real, fake = torch.rand(4, 3, 2, 2) * 2 - 1, torch.randn(4, 3, 2, 2)
    gen = torch.Generator().manual_seed(mix_seed)
    penalty = gradient_penalty(critic, real, fake, gen)
    assert float(penalty.detach()) == pytest.approx(4.0, abs=1e-5)
    # it is differentiable in the critic: d/dw (|w| - 1)^2 = 2 (|w| - 1) w / |w| = 4/3 w
    penalty.backward()
    assert torch.allclose(critic.w.grad, 4.0 / 3.0 * critic.w.detach(), atol=1e-5)


def test_gradient_penalty_differentiates_the_summed_patch_map():
    # Two patches with weights w1, w2: the summed map's gradient is w1 + w2 = (2, 2, 2, 0, ...),
    # |.| = sqrt(12), penalty (sqrt(12) - 1)^2 = 13 - 2 sqrt(12). (The mean map's would be
    # (1, 1, 1): (sqrt(3) - 1)^2 = 0.536.)
    critic = LinearCritic(weight(1.0, 2.0, 0.0), weight(1.0, 0.0, 2.0))
    real, fake = torch.zeros(3, 3, 2, 2), torch.ones(3, 3, 2, 2)
    expected = 13.0 - 2.0 * math.sqrt(12.0)
    assert float(gradient_penalty(critic, real, fake).detach()) == pytest.approx(expected, abs=1e-5)


def test_gradient_penalty_of_a_patchgan_against_its_jacobian():
    """pytorch-CycleGAN-and-pix2pix's cal_gradient_penalty written out: per sample, the gradient of
    the summed patch map (grad_outputs = ones) from the full Jacobian, its norm, (norm - 1)^2."""
    torch.manual_seed(4)
    critic = build_discriminator(2, False)  # 32 px -> a 2 x 2 patch map
    real, fake = torch.rand(3, 3, 32, 32) * 2 - 1, torch.rand(3, 3, 32, 32) * 2 - 1
    eps = torch.rand(3, 1, 1, 1, generator=torch.Generator().manual_seed(8))
    mixed = eps * real + (1 - eps) * fake
    norms = []
    for x in mixed:
        jacobian = torch.autograd.functional.jacobian(lambda v: critic(v[None])[0], x)  # (1, 2, 2, 3, 32, 32)
        assert jacobian.shape[:3] == (1, 2, 2)
        norms.append(float(jacobian.sum(dim=(0, 1, 2)).norm()))
    expected = float(np.mean([(n - 1.0) ** 2 for n in norms]))
    ours = gradient_penalty(critic, real, fake, torch.Generator().manual_seed(8))
    assert float(ours.detach()) == pytest.approx(expected, rel=1e-4)
    assert critic_gradient_norms(critic, real, fake, torch.Generator().manual_seed(8)).tolist() == \
        pytest.approx(norms, rel=1e-4)


def critic_after_training(gp_weight: float, steps: int = 60) -> float:
    """Mean |grad D| at held-out interpolates of a tiny PatchGAN after `steps` LSGAN updates
    (smooth "real" images against uniform noise), with the penalty at `gp_weight` or without."""
    torch.manual_seed(3)
    critic = build_discriminator(4, False)
    optimizer = torch.optim.Adam(critic.parameters(), lr=2e-4, betas=(0.5, 0.999))
    gen = torch.Generator().manual_seed(5)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 32), torch.linspace(-1, 1, 32), indexing="ij")

    def batch(n):
        phase = torch.rand(n, 3, 1, 1, generator=gen) * 6
        real = torch.sin(3 * xx + phase) * torch.cos(2 * yy + phase)
        return real, torch.rand(n, 3, 32, 32, generator=gen) * 2 - 1

    for _ in range(steps):
        real, fake = batch(4)
        loss = lsgan_discriminator(critic(real), critic(fake))
        if gp_weight:
            loss = loss + gp_weight * gradient_penalty(critic, real, fake, gen)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    real, fake = batch(16)
    return float(critic_gradient_norms(critic, real, fake, torch.Generator().manual_seed(9)).mean())


def test_gradient_penalty_brings_the_critic_gradient_norm_towards_one():
    start = critic_after_training(0.0, steps=0)
    without, penalized = critic_after_training(0.0), critic_after_training(10.0)
    assert abs(start - 1) > 0.5  # the untrained critic is far from 1-Lipschitz here (1.74)
    assert abs(penalized - 1) < 0.5 * abs(without - 1)  # measured 0.93 against 1.71


# ---- image pool -----------------------------------------------------------------------------

def labelled(values) -> torch.Tensor:
    """One-pixel images (N, 1, 1, 1) whose value names them."""
    return torch.tensor(values, dtype=torch.float32).view(-1, 1, 1, 1)


def names(images: torch.Tensor) -> list[float]:
    return images.flatten().tolist()


def test_pool_returns_the_inputs_until_full():
    pool = ImagePool(5)
    gen = torch.Generator().manual_seed(0)
    first, second = labelled([1, 2, 3]), labelled([4, 5])
    assert torch.equal(pool.query(first, gen), first)
    assert torch.equal(pool.query(second, gen), second)
    assert names(pool.state_dict()["images"]) == [1, 2, 3, 4, 5]
    assert torch.equal(ImagePool(0).query(first, gen), first)  # size 0: no pool at all


def test_full_pool_swaps_about_half_and_loses_nothing():
    pool = ImagePool(3)
    gen = torch.Generator().manual_seed(1)
    pool.query(labelled([1, 2, 3]), gen)
    new = list(range(100, 300))
    out = []
    for k in range(0, len(new), 4):
        out += names(pool.query(labelled(new[k:k + 4]), gen))
    stored = names(pool.state_dict()["images"])
    # every image that went in is either still stored or was handed out, exactly once
    assert sorted([1, 2, 3] + new) == sorted(stored + out)
    seen = {1, 2, 3}
    swapped = 0
    for position, value in enumerate(out):
        if value != new[position]:
            assert value in seen  # a stored image, never a future one
            swapped += 1
        seen.add(new[position])
    # Binomial(200, 1/2): mean 100, sd 7.1; both kinds must appear
    assert 65 <= swapped <= 135


def test_pool_state_round_trip():
    a = ImagePool(3)
    a.query(labelled([1, 2, 3, 4, 5]), torch.Generator().manual_seed(2))
    b = ImagePool(3)
    b.load_state_dict(a.state_dict())
    for round_ in range(4):
        new = labelled([10 * round_ + k for k in range(10, 13)])
        out_a = a.query(new, torch.Generator().manual_seed(round_))
        out_b = b.query(new, torch.Generator().manual_seed(round_))
        assert torch.equal(out_a, out_b)
    assert torch.equal(a.state_dict()["images"], b.state_dict()["images"])
    with pytest.raises(ValueError, match="pool size"):
        ImagePool(4).load_state_dict(a.state_dict())
    empty = ImagePool(3)
    empty.load_state_dict(ImagePool(3).state_dict())
    assert torch.equal(empty.query(labelled([7]), torch.Generator()), labelled([7]))


# ---- schedule and batches -------------------------------------------------------------------

def test_learning_rates_constant_without_final_rate():
    exp = experiment(lr_g=2e-4, lr_d=4e-4)
    for step in (0, 75, 10_000):
        assert exp.learning_rates(step, epoch_steps=10) == (2e-4, 4e-4)


@pytest.mark.parametrize("step, expected", [
    (0, (2e-4, 4e-4)),
    (75, (1.05e-4, 2.05e-4)),  # epoch 7.5 of 15: half way, 2e-4 - 0.5 * 1.9e-4, 4e-4 - 0.5 * 3.9e-4
    (150, (1e-5, 1e-5)),       # epoch 15: the final rate
    (300, (1e-5, 1e-5)),       # and it stays there
])
def test_learning_rates_decay_linearly(step, expected):
    exp = experiment(lr_g=2e-4, lr_d=4e-4, lr_final=1e-5, decay_start_epoch=0, decay_epochs=15)
    assert exp.learning_rates(step, epoch_steps=10) == pytest.approx(expected, rel=1e-12)


def test_learning_rates_wait_for_the_decay_start():
    exp = experiment(lr_g=2e-4, lr_d=4e-4, lr_final=1e-5, decay_start_epoch=5, decay_epochs=10)
    assert exp.learning_rates(50, epoch_steps=10) == pytest.approx((2e-4, 4e-4), rel=1e-12)
    assert exp.learning_rates(100, epoch_steps=10) == pytest.approx((1.05e-4, 2.05e-4), rel=1e-12)


# ---- training: tiny procedural domains ------------------------------------------------------

def ellipse_rgba(rng: np.random.Generator, size: int, style: str) -> np.ndarray:
    """(size, size, 4) uint8: one opaque ellipse on transparent black.

    "flat": one random colour (the synthetic renders); "striped": blue and orange bands.
    """
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    cy, cx = rng.uniform(0.35, 0.65, 2) * size
    ay, ax = rng.uniform(0.15, 0.3, 2) * size
    inside = ((yy - cy) / ay) ** 2 + ((xx - cx) / ax) ** 2 <= 1.0
    rgba = np.zeros((size, size, 4), np.uint8)
    if style == "flat":
        rgba[inside, :3] = rng.integers(60, 256, 3)
    else:
        bands = (yy.astype(int) // 3) % 2 == 0
        rgba[..., 0] = np.where(bands, 40, 220)
        rgba[..., 1] = 90
        rgba[..., 2] = np.where(bands, 220, 30)
        rgba[~inside, :3] = 0
    rgba[inside, 3] = 255
    return rgba


def write_domain(folder: Path, n: int, style: str, seed: int, size: int = 32) -> list[ImageRef]:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    refs = []
    for k in range(n):
        path = folder / f"{k:03d}.png"
        Image.fromarray(ellipse_rgba(rng, size, style)).save(path)
        refs.append(ImageRef(path, path.name))
    return refs


@pytest.fixture(scope="module")
def ellipses(tmp_path_factory) -> dict[str, list[ImageRef]]:
    root = tmp_path_factory.mktemp("ellipses")
    return {"x": write_domain(root / "x", 6, "flat", 1),
            "y": write_domain(root / "y", 6, "striped", 2),
            "x_val": write_domain(root / "x_val", 2, "flat", 3)}


def tiny_training(steps: int, **overrides) -> dict:
    return config_section("style_transfer.training", **{
        "steps": steps, "batch_size": 2, "pool_size": 3, "checkpoint_every": 4,
        "validate_every": 0, "log_every": 1, "record_every": 1, "val_images": 0,
        "alpha_tolerance": 0.01, **overrides})


def train_tiny(ck: Path, refs: dict, exp: Experiment, training: dict, *, validate: bool = False,
               X: Domain | None = None):
    """train_cyclegan on freshly built domains (nothing carried over from an earlier run)."""
    X = X or Domain(refs["x"], 32, "x")
    X_val = Domain(refs["x_val"], 32, "x_val") if validate else None
    return train_cyclegan(X=X, Y=Domain(refs["y"], 32, "y"), X_val=X_val, checkpoint_dir=ck,
                          arch=TINY, exp=exp, training=training, features=None, seed=SEED,
                          device=CPU)


def assert_identical(a, b, where: str = "") -> None:
    """Nested dicts/lists of tensors and plain values, equal bit for bit."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            assert_identical(a[key], b[key], f"{where}/{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (u, v) in enumerate(zip(a, b)):
            assert_identical(u, v, f"{where}[{i}]")
    else:
        assert a == b, where


def history_lines(ck: Path) -> list[str]:
    """history.csv's lines (no wall-clock column: runs compare byte for byte)."""
    return (ck / "history.csv").read_text().splitlines()


RESUME_VARIANTS = {
    "stock": (experiment(), False),
    "stabilized": (experiment(gp_weight=10.0, spectral_norm=True, label_smoothing=0.1, lr_g=3e-4,
                              lr_d=1e-4, lr_final=1e-5, decay_epochs=1.0, lambda_alpha_G=2.0,
                              lambda_alpha_F=2.0), True),
}


@pytest.mark.parametrize("variant", sorted(RESUME_VARIANTS))
def test_resume_after_sigterm_is_exact(tmp_path, ellipses, monkeypatch, variant):
    exp, validate = RESUME_VARIANTS[variant]
    steps, stop_after = 6, 3
    training = tiny_training(steps, validate_every=2 if validate else 0,
                             val_images=2 if validate else 0)
    _, straight, _ = train_tiny(tmp_path / "straight", ellipses, exp, training, validate=validate)

    original, calls = CycleGAN.train_step, []

    def train_step_then_sigterm(self, x, y, gen):
        losses = original(self, x, y, gen)
        calls.append(1)
        if len(calls) == stop_after:  # as a scheduler would: in the middle of training
            os.kill(os.getpid(), signal.SIGTERM)
        return losses

    monkeypatch.setattr(CycleGAN, "train_step", train_step_then_sigterm)
    with pytest.raises(SystemExit) as stopped:
        train_tiny(tmp_path / "resumed", ellipses, exp, training, validate=validate)
    assert stopped.value.code == SIGTERM_EXIT_STATUS
    monkeypatch.undo()
    written = sorted(p.name for p in (tmp_path / "resumed").glob("step_*.pt"))
    assert written == [f"step_{stop_after:08d}.pt"]

    _, resumed, summary = train_tiny(tmp_path / "resumed", ellipses, exp, training,
                                     validate=validate)
    assert summary["resumed_from"] == stop_after
    for name, module in straight.modules.items():
        assert_identical(module.state_dict(), resumed.modules[name].state_dict(), name)
    assert_identical(straight.opt_G.state_dict(), resumed.opt_G.state_dict(), "opt_G")
    assert_identical(straight.opt_D.state_dict(), resumed.opt_D.state_dict(), "opt_D")
    assert_identical(straight.pool_x.state_dict(), resumed.pool_x.state_dict(), "pool_x")
    assert_identical(straight.pool_y.state_dict(), resumed.pool_y.state_dict(), "pool_y")
    assert len(straight.pool_y.state_dict()["images"]) == 3  # the pools were full and swapping
    assert history_lines(tmp_path / "straight") == history_lines(
        tmp_path / "resumed")
    if validate:
        best = [read_checkpoint(tmp_path / run / "best.pt")["step"] for run in ("straight", "resumed")]
        assert best[0] == best[1]


class PoisonedDomain(Domain):
    """A domain whose batch number `poisoned` (0-based, one batch per step) is all NaN."""

    def __init__(self, refs, size, name, poisoned: int):
        super().__init__(refs, size, name)
        self.poisoned, self.batches = poisoned, 0

    def tensor(self, indices, flips=None) -> torch.Tensor:
        images = super().tensor(indices, flips)
        if self.batches == self.poisoned:
            images = torch.full_like(images, math.nan)
        self.batches += 1
        return images


def test_nan_loss_stops_training_and_keeps_the_last_checkpoint(tmp_path, ellipses):
    ck = tmp_path / "ck"
    X = PoisonedDomain(ellipses["x"], 32, "x", poisoned=5)
    with pytest.raises(TrainingError, match="at step 5"):
        train_tiny(ck, ellipses, experiment(), tiny_training(10, checkpoint_every=2), X=X)
    assert sorted(p.name for p in ck.glob("step_*.pt")) == ["step_00000004.pt"]
    payload = read_checkpoint(ck / "step_00000004.pt")
    assert payload["step"] == 4
    tensors = [t for state in payload["modules"].values() for t in state.values()]
    tensors += [payload["states"][p]["images"] for p in ("pool_x", "pool_y")]
    assert tensors and all(bool(torch.isfinite(t).all()) for t in tensors)


# ---- the alpha loss keeps the masks ---------------------------------------------------------

ALPHA_ARCH = Architecture(ngf=8, ndf=8, n_blocks=1, image_size=32)
ALPHA_STEPS = 300
ALPHA_TOLERANCE = 0.01


@pytest.fixture(scope="module")
def alpha_domains(tmp_path_factory) -> dict[str, Domain]:
    root = tmp_path_factory.mktemp("alpha")
    return {"x": Domain(write_domain(root / "x", 16, "flat", 11), 32, "x"),
            "y": Domain(write_domain(root / "y", 16, "striped", 12), 32, "y"),
            "held_out": Domain(write_domain(root / "held_out", 8, "flat", 13), 32, "held_out")}


def held_out_images(domains: dict[str, Domain]) -> torch.Tensor:
    return domains["held_out"].tensor(range(len(domains["held_out"])))


def test_untrained_generator_moves_the_masks(alpha_domains):
    held_out = held_out_images(alpha_domains)
    torch.manual_seed(SEED)  # the initial G of the training run below
    untrained = build_generator(ALPHA_ARCH.ngf, ALPHA_ARCH.n_blocks)
    before = alpha_disagreement(held_out, generate(untrained, held_out, CPU))
    # an untrained G paints the whole frame: everything but the ellipse disagrees
    background = 1.0 - alpha_mask(held_out).flatten(1).mean(dim=1)
    assert torch.equal(before, background)
    assert float(before.min()) > 0.3


# Measured on a 2-core machine, one torch thread (the same numbers bit for bit each run): the
# held-out disagreement after ALPHA_STEPS steps at lambda_alpha 200, per alpha-loss form
# (max / mean over the 8 images): squared_l1 + linear (the thesis's) 0.127 / 0.105; l1 + linear
# 0.053 / 0.046; squared_l1 + sigmoid T 0.02 0.040 / 0.023; l1 + sigmoid T 0.02 0.037 / 0.019,
# T 0.005 0.024 / 0.012; squared_l1 + hinge 2.5 0.036 / 0.013; l1 + hinge margin 1-5
# 0.012-0.025 / 0.005-0.008, margin 2.5 (config.yaml's demo form) 0.0156 / 0.0051.
ALPHA_FORMS = {"thesis": THESIS_FORM, "demo": {}}  # demo: config.yaml's defaults as they are


@pytest.fixture(scope="module")
def alpha_runs(tmp_path_factory, alpha_domains):
    """form name -> (8,) held-out disagreement after training with that form (trained once)."""
    runs: dict[str, torch.Tensor] = {}

    def run(form: str) -> torch.Tensor:
        if form not in runs:
            exp = experiment(lambda_alpha_G=200.0, lambda_alpha_F=200.0, lr_g=2e-3, lr_d=2e-3,
                             **ALPHA_FORMS[form])
            training = tiny_training(ALPHA_STEPS, batch_size=4, pool_size=8,
                                     checkpoint_every=ALPHA_STEPS, log_every=50, record_every=50)
            _, model, _ = train_cyclegan(
                X=alpha_domains["x"], Y=alpha_domains["y"], X_val=None,
                checkpoint_dir=tmp_path_factory.mktemp(f"alpha_{form}"), arch=ALPHA_ARCH, exp=exp,
                training=training, features=None, seed=SEED, device=CPU)
            held_out = held_out_images(alpha_domains)
            runs[form] = alpha_disagreement(held_out, generate(model.G.eval(), held_out, CPU))
        return runs[form]

    return run


@pytest.mark.parametrize("form", [
    pytest.param("thesis", marks=pytest.mark.xfail(strict=True, reason=(
        "measured: squared_l1 + linear, after 300 steps at lambda_alpha 200 the held-out "
        "disagreement is 0.080-0.127 per image (mean 0.105), no better than lambda_alpha 0 "
        "(0.086-0.131, mean 0.115): a one-pixel halo of background outputs in (-0.996, -0.95) "
        "stays, where tanh' and the straight-through gradient of the squared L1 are small"))),
    pytest.param("demo", marks=pytest.mark.xfail(strict=True, reason=(
        "measured: l1 + hinge (margin 2.5), 0.000-0.0156 per image (mean 0.0051): the pixels "
        "left are on the outline, 16 of them on held-out image 1, the largest ellipse (275 "
        "pixels; the training ones have at most 225), which comes within 2 pixels of the "
        "frame, where the generator's reflection padding mirrors it and G paints the gap. "
        "No form measured (see ALPHA_FORMS) reached 0.01. Reported to the lead, not weakened"))),
])
def test_alpha_loss_keeps_the_masks(alpha_runs, form):
    after = alpha_runs(form)
    assert float(after.max()) < ALPHA_TOLERANCE, after.tolist()


def test_demo_alpha_form_keeps_the_masks_better_than_the_thesiss(alpha_runs):
    demo, thesis = alpha_runs("demo"), alpha_runs("thesis")
    assert float(demo.mean()) < ALPHA_TOLERANCE, demo.tolist()
    assert float(demo.max()) < float(thesis.max()) / 5, (demo.tolist(), thesis.tolist())


def test_untrained_generator_is_the_one_training_starts_from(tmp_path, ellipses, monkeypatch):
    """The learning table's style baseline: G rebuilt from the file's seed equals, tensor for
    tensor, the G the trainer received before its first step; another seed gives another G."""
    from shapepose.style import train as style_train

    started = {}

    class RecordingTrainer(style_train.Trainer):
        def fit(self, *args, **kwargs):
            started.update({k: v.detach().clone() for k, v in self.modules["G"].state_dict().items()})
            return super().fit(*args, **kwargs)

    monkeypatch.setattr(style_train, "Trainer", RecordingTrainer)
    _, model, _ = train_tiny(tmp_path / "ck", ellipses, experiment(), tiny_training(2, checkpoint_every=2))
    exported = {"meta": {"seed": SEED, "extra": {"architecture": vars(TINY)}}}
    rebuilt = style_train.untrained_generator(exported, CPU).state_dict()
    assert started and rebuilt.keys() == started.keys()
    assert all(torch.equal(rebuilt[k], started[k]) for k in started)
    trained = model.G.state_dict()
    assert not all(torch.equal(trained[k].cpu(), started[k]) for k in started if k.endswith("weight"))
    other = style_train.untrained_generator({"meta": {"seed": SEED + 1, "extra": exported["meta"]["extra"]}},
                                            CPU).state_dict()
    assert not all(torch.equal(other[k], started[k]) for k in started if k.endswith("weight"))

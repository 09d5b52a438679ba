"""The style-transfer networks of seed 002 sections 4.2 and 4.3: ResNet generator, PatchGAN critic.

Generator (width `ngf`, 9 residual blocks by default): 7x7 conv to ngf, two stride-2 3x3 convs to
4 ngf, residual blocks of two 3x3 convs at 4 ngf, two stride-2 3x3 transposed convs back to ngf,
7x7 conv to 3 channels, tanh. Every conv but the last is followed by non-affine instance norm and
a leaky ReLU of slope 0.01 (the thesis's wording; the stock CycleGAN code uses a plain ReLU, which
has no parameters either, so the parameter counts agree). Padding is by reflection.

Discriminator (width `ndf`): the 70 x 70 PatchGAN, 4x4 convs to ndf, 2 ndf, 4 ndf (stride 2),
8 ndf (stride 1) and 1 channel (stride 1), zero padding 1, leaky ReLU 0.2, instance norm after all
but the first and the last conv. A 256-px input gives 30 x 30 scores, a 128-px input 14 x 14.

Convolutions carry biases (instance norm without affine parameters does not cancel them), as in
the stock `resnet_9blocks` / `basic` networks, so the parameter counts match those exactly.

Mixed precision (the trainer's bf16 autocast): every layer of the generator but its output layer
(padding, 7x7 convolution, tanh) runs in it; the output layer stays fp32 (`style.train.PRECISIONS`
says why). The critics run in it entirely; their scores are compared in fp32 by the losses.
"""

from __future__ import annotations

import torch
from torch import nn

from shapepose.gan.networks import (INIT_STD, in_fp32, init_weights,  # noqa: F401
                                     spectral_norm_convs)

GENERATOR_SLOPE = 0.01  # seed 002 section 4.2
CRITIC_SLOPE = 0.2  # seed 002 section 4.3


def _norm(channels: int) -> nn.Module:
    return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)


class ResidualBlock(nn.Module):
    """x + (pad, conv3x3, norm, leaky ReLU, pad, conv3x3, norm)(x): skip over two convolutions."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), _norm(channels),
            nn.LeakyReLU(GENERATOR_SLOPE, inplace=True),
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), _norm(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """RGB in [-1, 1] -> RGB in [-1, 1], same size (a multiple of 4)."""

    def __init__(self, ngf: int = 64, n_blocks: int = 9, channels: int = 3):
        super().__init__()
        self.ngf, self.n_blocks = ngf, n_blocks
        act = lambda: nn.LeakyReLU(GENERATOR_SLOPE, inplace=True)
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(channels, ngf, 7), _norm(ngf), act()]
        for k in (1, 2):  # ngf -> 2 ngf -> 4 ngf, halving the size each time
            c_in, c_out = ngf * 2 ** (k - 1), ngf * 2 ** k
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), _norm(c_out), act()]
        layers += [ResidualBlock(4 * ngf) for _ in range(n_blocks)]
        for k in (2, 1):  # 4 ngf -> 2 ngf -> ngf, doubling the size each time
            c_in, c_out = ngf * 2 ** k, ngf * 2 ** (k - 1)
            layers += [nn.ConvTranspose2d(c_in, c_out, 3, stride=2, padding=1, output_padding=1),
                       _norm(c_out), act()]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, channels, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    OUTPUT_LAYERS = 3  # the last padding, convolution and tanh

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] % 4 or x.shape[-2] % 4:
            raise ValueError(f"generator input height and width must be multiples of 4, got "
                             f"{tuple(x.shape[-2:])}")
        return in_fp32(self.net[-self.OUTPUT_LAYERS:], self.net[:-self.OUTPUT_LAYERS](x))


class PatchDiscriminator(nn.Module):
    """RGB (B, 3, S, S) -> patch scores (B, 1, S', S'); no sigmoid (LSGAN regresses the labels)."""

    def __init__(self, ndf: int = 64, channels: int = 3, spectral_norm: bool = False):
        super().__init__()
        act = lambda: nn.LeakyReLU(CRITIC_SLOPE, inplace=True)
        widths = [ndf, 2 * ndf, 4 * ndf, 8 * ndf]
        layers: list[nn.Module] = [nn.Conv2d(channels, widths[0], 4, stride=2, padding=1), act()]
        for c_in, c_out, stride in ((widths[0], widths[1], 2), (widths[1], widths[2], 2),
                                    (widths[2], widths[3], 1)):
            layers += [nn.Conv2d(c_in, c_out, 4, stride=stride, padding=1), _norm(c_out), act()]
        layers += [nn.Conv2d(widths[3], 1, 4, stride=1, padding=1)]
        self.net = nn.Sequential(*layers)
        self.spectral_norm = spectral_norm
        if spectral_norm:
            self.apply_spectral_norm()

    def apply_spectral_norm(self) -> None:
        """Divide every conv weight by its largest singular value (one power iteration per call)."""
        spectral_norm_convs(self.net)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def build_generator(ngf: int, n_blocks: int) -> ResnetGenerator:
    return init_weights(ResnetGenerator(ngf=ngf, n_blocks=n_blocks))


def build_discriminator(ndf: int, spectral_norm: bool) -> PatchDiscriminator:
    net = init_weights(PatchDiscriminator(ndf=ndf))
    if spectral_norm:
        net.apply_spectral_norm()
        net.spectral_norm = True
    return net

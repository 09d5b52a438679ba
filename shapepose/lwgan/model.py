"""The Liquid Warping GAN generator (three streams joined by the Liquid Warping Block) and its
conditional PatchGAN discriminator, sized as `svip-lab/impersonator` builds them.

Generator (`LiquidWarpingGenerator`, width `conv_dim`, `n_blocks` residual blocks, `n_down`
halvings; the original: 64, 6, 3):
- background stream (`ResNetStream`): the masked source and its mask (4 channels) -> 7x7 conv,
  `n_down` stride-2 3x3 convs doubling the width, residual blocks, `n_down` stride-2 3x3
  transposed convs, 7x7 conv to RGB, tanh: the inpainted background;
- source-identity and transfer streams (`ResUnetStream`): image + condition map -> the same
  encoder and residual blocks, a decoder whose every transposed conv is followed by a 3x3 conv over
  [encoder skip, upsampled] (U-Net), and two 7x7 heads: colour (tanh) and attention A (sigmoid);
  an output image is A x background + (1 - A) x colour;
- the Liquid Warping Block: the source stream's features, warped by the flow T (resized to each
  level), are added to the transfer stream's after each encoder level but the first and after
  every residual block. The original resizes T and samples with align_corners=True (its torch's
  grid_sample default), which keeps an identity flow the identity at every level; our grids use
  align_corners=False (pixel centres, `shapepose.render.correspondence.pixel_to_grid`), and a
  bilinear resize with align_corners=False keeps that identity exact too (halving averages each
  2 x 2 block of grid points, whose mean is the coarse pixel's centre).
Every conv but the heads is followed by instance norm (affine) and ReLU; no conv has a bias.

Discriminator (`PatchDiscriminator`, width `ndf`, `n_layers`; the original: 64, 4): 4x4 convs,
stride 2 for the first `n_layers`, then two of stride 1, widths ndf x min(2^k, 8), leaky ReLU
0.2, non-affine instance norm after all but the first and the last; input the image with the
reference condition map (conditional, pix2pix). Weights ~ N(0, 0.02), biases 0 (the original's
init_weights touches only convolutions, so instance-norm scales start at 1).

Mixed precision (the trainer's bf16 autocast): every layer runs in it but the generator's output
heads (7x7 convolution and tanh or sigmoid of each stream), which stay fp32 (`in_fp32`): in bf16
a sigmoid rounds to exactly 1 from a logit of 6.2 on (fp32: 16.6), where its derivative, and with
it the attention loss's gradient, is 0 however wrong the mask is.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from shapepose.gan.networks import in_fp32, init_weights, spectral_norm_convs


def _conv_block(c_in: int, c_out: int, k: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, k, stride=stride, padding=k // 2, bias=False),
                         nn.InstanceNorm2d(c_out, affine=True), nn.ReLU(inplace=True))


def _up_block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.ConvTranspose2d(c_in, c_out, 3, stride=2, padding=1, output_padding=1,
                                            bias=False),
                         nn.InstanceNorm2d(c_out, affine=True), nn.ReLU(inplace=True))


class ResidualBlock(nn.Module):
    """x + (conv3x3, IN, ReLU, conv3x3, IN)(x)."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.InstanceNorm2d(channels, affine=True), nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.InstanceNorm2d(channels, affine=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResNetStream(nn.Module):
    """The background stream: (B, c_in, S, S) -> RGB (B, 3, S, S) in [-1, 1]."""

    def __init__(self, c_in: int, conv_dim: int, n_blocks: int, n_down: int):
        super().__init__()
        layers: list[nn.Module] = [_conv_block(c_in, conv_dim, 7)]
        c = conv_dim
        for _ in range(n_down):
            layers.append(_conv_block(c, 2 * c, 3, stride=2))
            c *= 2
        layers += [ResidualBlock(c) for _ in range(n_blocks)]
        for _ in range(n_down):
            layers.append(_up_block(c, c // 2))
            c //= 2
        layers += [nn.Conv2d(c, 3, 7, padding=3, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    OUTPUT_LAYERS = 2  # the last convolution and tanh

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return in_fp32(self.net[-self.OUTPUT_LAYERS:], self.net[:-self.OUTPUT_LAYERS](x))


class ResUnetStream(nn.Module):
    """A source or transfer stream: encoders, residual blocks, U-Net decoder, two heads."""

    def __init__(self, c_in: int, conv_dim: int, n_blocks: int, n_down: int):
        super().__init__()
        self.n_down = n_down
        encoders = [_conv_block(c_in, conv_dim, 7)]
        c = conv_dim
        for _ in range(n_down):
            encoders.append(_conv_block(c, 2 * c, 3, stride=2))
            c *= 2
        self.encoders = nn.ModuleList(encoders)
        self.blocks = nn.ModuleList(ResidualBlock(c) for _ in range(n_blocks))
        decoders, skippers = [], []
        for _ in range(n_down):
            decoders.append(_up_block(c, c // 2))
            skippers.append(_conv_block(c, c // 2, 3))  # over [skip, upsampled]: c channels
            c //= 2
        self.decoders, self.skippers = nn.ModuleList(decoders), nn.ModuleList(skippers)
        self.colour_head = nn.Sequential(nn.Conv2d(c, 3, 7, padding=3, bias=False), nn.Tanh())
        self.attention_head = nn.Sequential(nn.Conv2d(c, 1, 7, padding=3, bias=False), nn.Sigmoid())

    def decode(self, x: torch.Tensor, skips: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Bottleneck features and the encoder outputs -> (colour (B, 3), attention (B, 1))."""
        for i in range(self.n_down):
            x = self.decoders[i](x)
            x = self.skippers[i](torch.cat([skips[self.n_down - 1 - i], x], dim=1))
        return in_fp32(self.colour_head, x), in_fp32(self.attention_head, x)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        skips = []
        for encoder in self.encoders:
            x = encoder(x)
            skips.append(x)
        for block in self.blocks:
            x = block(x)
        return self.decode(x, skips)


def resize_flow(flow: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B, S, S, 2) grid -> (B, h, w, 2), bilinear, align_corners=False (see the module doc)."""
    if tuple(flow.shape[1:3]) == tuple(size):
        return flow
    return F.interpolate(flow.permute(0, 3, 1, 2), size=size, mode="bilinear",
                         align_corners=False).permute(0, 2, 3, 1)


def warp(features: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """The Liquid Warping Block's warp: features (B, C, h, w) sampled at the flow resized to
    (h, w); pixels whose flow points outside [-1, 1] get 0 (zeros padding)."""
    grid = resize_flow(flow, features.shape[-2:])
    return F.grid_sample(features, grid, mode="bilinear", padding_mode="zeros",
                         align_corners=False)


class LiquidWarpingGenerator(nn.Module):
    """bg, src, tsf inputs and the flow -> background, source colour and attention, transfer
    colour and attention (call `compose` for the images)."""

    def __init__(self, cond_channels: int, conv_dim: int, n_blocks: int, n_down: int):
        super().__init__()
        self.background = ResNetStream(4, conv_dim, n_blocks, n_down)
        self.source = ResUnetStream(3 + cond_channels, conv_dim, n_blocks, n_down)
        self.transfer = ResUnetStream(3 + cond_channels, conv_dim, n_blocks, n_down)
        self.n_down = n_down

    def forward(self, bg_in: torch.Tensor, src_in: torch.Tensor, tsf_in: torch.Tensor,
                flow: torch.Tensor) -> dict[str, torch.Tensor]:
        src, tsf = self.source, self.transfer
        background = self.background(bg_in)
        s, t = src.encoders[0](src_in), tsf.encoders[0](tsf_in)
        s_skips, t_skips = [s], [t]
        for i in range(1, self.n_down + 1):
            s = src.encoders[i](s)
            t = tsf.encoders[i](t) + warp(s, flow)
            s_skips.append(s)
            t_skips.append(t)
        for s_block, t_block in zip(src.blocks, tsf.blocks):
            s = s_block(s)
            t = t_block(t) + warp(s, flow)
        src_colour, src_attention = src.decode(s, s_skips)
        tsf_colour, tsf_attention = tsf.decode(t, t_skips)
        return {"background": background, "src_colour": src_colour, "src_attention": src_attention,
                "tsf_colour": tsf_colour, "tsf_attention": tsf_attention,
                "src_image": compose(src_attention, background, src_colour),
                "tsf_image": compose(tsf_attention, background, tsf_colour)}


def compose(attention: torch.Tensor, background: torch.Tensor, colour: torch.Tensor) -> torch.Tensor:
    """A x background + (1 - A) x colour (A: (B, 1, S, S) in [0, 1])."""
    return attention * background + (1 - attention) * colour


class PatchDiscriminator(nn.Module):
    """(B, c_in, S, S) -> patch scores (B, 1, S', S'), no sigmoid (least squares)."""

    def __init__(self, c_in: int, ndf: int, n_layers: int):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(c_in, ndf, 4, stride=2, padding=1),
                                   nn.LeakyReLU(0.2, inplace=True)]
        mult = 1
        for n in range(1, n_layers):
            prev, mult = mult, min(2 ** n, 8)
            layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride=2, padding=1),
                       nn.InstanceNorm2d(ndf * mult), nn.LeakyReLU(0.2, inplace=True)]
        prev, mult = mult, min(2 ** n_layers, 8)
        layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride=1, padding=1),
                   nn.InstanceNorm2d(ndf * mult), nn.LeakyReLU(0.2, inplace=True),
                   nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def build_generator(cond_channels: int, conv_dim: int, n_blocks: int, n_down: int
                    ) -> LiquidWarpingGenerator:
    return init_weights(LiquidWarpingGenerator(cond_channels, conv_dim, n_blocks, n_down))


def build_discriminator(c_in: int, ndf: int, n_layers: int, spectral_norm: bool) -> PatchDiscriminator:
    net = init_weights(PatchDiscriminator(c_in, ndf, n_layers))
    if spectral_norm:
        spectral_norm_convs(net.net)
    return net

"""The generator and discriminator objectives of seed 002 chapter 4 and the stabilizers of seed 004.

Images are RGB tensors (B, 3, H, W) in [-1, 1]; -1 is "nothing" (seed 002 section 4.2).

Norms: the thesis's |.|_1 is the stock implementation's L1 loss, the mean absolute difference over
the elements of one sample; "squared L1" squares that per-sample mean, and the expectation over
samples is the batch mean. Discriminators output a grid of patch scores (30 x 30 for a 256-px
input); the LSGAN terms take the mean square over the patches (section 4.3).

Labels: discriminators map real images to 1 and generated ones to 0, for both D_X and D_Y (the
thesis's nomenclature and the stock code). Its printed V_LSGAN_{D_X} swaps the two labels for
D_X, which is the same game under D -> 1 - D, and would contradict the nomenclature.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass, fields

import torch
from torch import nn

from shapepose.gan.losses import (  # noqa: F401  (style's names, shared with lwgan)
    critic_gradient_norms,
    gradient_penalty,
    least_squares,
    lsgan_discriminator,
    lsgan_generator,
)

# Alpha(x) = 1 where any RGB channel is above "nothing". The thesis's test is "> -1" on RGB values
# that were 8-bit integers mapped to [-1, 1]; a generated value counts as nothing when it writes
# as 8-bit 0, i.e. below -1 + 1/255. On 8-bit inputs (-1 or >= -1 + 2/255) both tests agree.
ALPHA_THRESHOLD = -1.0 + 1.0 / 255.0


def to_signed(rgb_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 (..., H, W, 3) -> float (..., 3, H, W) in [-1, 1] (0 -> -1, 255 -> 1)."""
    return rgb_uint8.movedim(-1, -3).float().div(127.5).sub(1.0)


def to_uint8(signed: torch.Tensor) -> torch.Tensor:
    """float (..., 3, H, W) in [-1, 1] -> uint8 (..., H, W, 3), rounding to nearest."""
    return signed.detach().clamp(-1, 1).add(1.0).mul(127.5).round().to(torch.uint8).movedim(-3, -1)


def alpha_mask(x: torch.Tensor) -> torch.Tensor:
    """Seed 002's Alpha: (B, 3, H, W) -> (B, 1, H, W), 1.0 where any channel is above nothing."""
    return (x.amax(dim=1, keepdim=True) > ALPHA_THRESHOLD).to(x.dtype)


# The alpha loss's named forms (config style_transfer.defaults alpha_norm, alpha_surrogate). The
# thesis's: "squared_l1" and "linear". The loss's value is the same for every surrogate.
ALPHA_NORMS = ("squared_l1", "l1")
ALPHA_SURROGATES = ("linear", "sigmoid", "hinge")
# The generators end in tanh, so z = atanh(max_c x) is the brightest channel's pre-tanh activation
# (max commutes with the increasing tanh). ALPHA_THRESHOLD in those units: about -3.116.
PRETANH_THRESHOLD = math.atanh(ALPHA_THRESHOLD)
# max_c x is clamped to [-1 + PRETANH_EPS, 1 - PRETANH_EPS] before atanh (|z| <= 7.25): tanh in
# float32 reaches -1 exactly, where atanh and its derivative are infinite.
PRETANH_EPS = 1e-6


def pretanh_max(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) -> (B, 1, H, W): atanh of the brightest channel, clamped (PRETANH_EPS)."""
    m = x.amax(dim=1, keepdim=True)
    return torch.atanh(m.clamp(-1.0 + PRETANH_EPS, 1.0 - PRETANH_EPS))


def alpha_straight_through(x: torch.Tensor, surrogate: str = "linear",
                           temperature: float | None = None) -> torch.Tensor:
    """Alpha(x) in the forward pass; in the backward pass the derivative of a soft Alpha.

    Alpha is a step, whose derivative is zero wherever it exists, so the alpha loss as written
    would not move the generator at all. The straight-through estimator keeps the loss's value
    exactly as written and lets its gradient push a pixel's brightest channel m = max_c x down
    where the output should be nothing and up where it should be something. The soft Alpha whose
    derivative the backward pass takes:

    - "linear" (the thesis's form): (m + 1) / 2, derivative 1/2 everywhere;
    - "sigmoid": sigmoid((m - ALPHA_THRESHOLD) / temperature), derivative s (1 - s) / temperature,
      concentrated within a few temperatures of the threshold (1/255 is one 8-bit step).
    """
    m = x.amax(dim=1, keepdim=True)
    if surrogate == "linear":
        soft = (m + 1.0) / 2.0
    elif surrogate == "sigmoid":
        if temperature is None or not temperature > 0:
            raise ValueError(f"the sigmoid surrogate needs a temperature > 0, got {temperature}")
        soft = torch.sigmoid((m - ALPHA_THRESHOLD) / temperature)
    else:
        raise ValueError(f"alpha_straight_through: surrogate {surrogate!r} is not one of "
                         "('linear', 'sigmoid')")
    return alpha_mask(x) + (soft - soft.detach())


def alpha_hinge(target_alpha: torch.Tensor, x: torch.Tensor, margin: float) -> torch.Tensor:
    """(B, 1, H, W) per-pixel hinge on the pre-tanh activation z = `pretanh_max(x)`, zero once
    z is `margin` beyond the threshold on the target's side:
    relu(z - (z_t - margin)) where the target is nothing, relu((z_t + margin) - z) where it is
    something (z_t = PRETANH_THRESHOLD)."""
    z = pretanh_max(x)
    return torch.where(target_alpha > 0, torch.relu(PRETANH_THRESHOLD + margin - z),
                       torch.relu(z - (PRETANH_THRESHOLD - margin)))


def mean_abs(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """|a - b|_1 per sample as the stock L1 loss computes it (mean over elements), batch mean."""
    return (a - b).abs().mean()


def squared_l1(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """E over samples of (|a_i - b_i|_1)^2, each sample's L1 a mean over its elements."""
    per_sample = (a - b).abs().flatten(1).mean(dim=1)
    return per_sample.square().mean()


def l1(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """E over samples of |a_i - b_i|_1, each sample's L1 a mean over its elements."""
    return (a - b).abs().flatten(1).mean(dim=1).mean()


ALPHA_NORM_FUNCTIONS = {"squared_l1": squared_l1, "l1": l1}


def alpha_loss(target: torch.Tensor, generated: torch.Tensor, norm: str, surrogate: str,
               temperature: float, margin: float) -> torch.Tensor:
    """norm(Alpha(target), Alpha(generated)): the thesis's alpha loss in one of its named forms.

    The value is always the norm of the two hard masks ("squared_l1", the thesis's:
    E[(|a - b|_1)^2]; "l1": E|a - b|_1). The gradient reaching `generated` is a surrogate's:
    - "linear", "sigmoid": the norm's gradient through `alpha_straight_through` (`temperature`
      is the sigmoid's). A pixel whose Alpha already agrees gets no gradient (|.|' = 0 there);
    - "hinge": straight-through on the whole norm, value norm(Alpha(target), Alpha(generated)),
      gradient that of norm(`alpha_hinge`(Alpha(target), generated, margin), 0). Every pixel
      within `margin` of the threshold in pre-tanh units is pushed away from it, agreeing or not,
      with a constant gradient in the activation (tanh' cancels atanh'), so outlines keep a margin.
    """
    if norm not in ALPHA_NORM_FUNCTIONS:
        raise ValueError(f"unknown alpha norm {norm!r}; known: {ALPHA_NORMS}")
    fn = ALPHA_NORM_FUNCTIONS[norm]
    a = alpha_mask(target)
    if surrogate != "hinge":
        return fn(a, alpha_straight_through(generated, surrogate, temperature))
    value = fn(a, alpha_mask(generated))
    hinge = alpha_hinge(a, generated, margin)
    soft = fn(hinge, torch.zeros_like(hinge))
    return value + (soft - soft.detach())


@dataclass(frozen=True)
class LossWeights:
    """Seed 002 table 6.1's hyper-parameters (the experiment's loss weights) and the alpha loss's
    named form (`alpha_loss`): its norm, the gradient surrogate of its Alpha step, the sigmoid
    surrogate's temperature and the hinge surrogate's margin. The thesis's form is
    alpha_norm "squared_l1" with alpha_surrogate "linear"."""

    lambda_A: float
    lambda_B: float
    lambda_idt: float
    lambda_alpha_G: float
    lambda_alpha_F: float
    lambda_resdist_G: float
    lambda_resdist_F: float
    alpha_norm: str
    alpha_surrogate: str
    alpha_temperature: float
    alpha_margin: float

    def __post_init__(self):
        for name in LOSS_WEIGHT_NAMES:
            value = getattr(self, name)
            if value < 0:
                raise ValueError(f"loss weight {name} must be >= 0, got {value}")
        if self.alpha_norm not in ALPHA_NORMS:
            raise ValueError(f"alpha_norm must be one of {ALPHA_NORMS}, got {self.alpha_norm!r}")
        if self.alpha_surrogate not in ALPHA_SURROGATES:
            raise ValueError(f"alpha_surrogate must be one of {ALPHA_SURROGATES}, "
                             f"got {self.alpha_surrogate!r}")
        if not self.alpha_temperature > 0:
            raise ValueError(f"alpha_temperature must be > 0, got {self.alpha_temperature}")
        if not self.alpha_margin >= 0:
            raise ValueError(f"alpha_margin must be >= 0, got {self.alpha_margin}")

    @property
    def loss_weights(self) -> LossWeights:
        """Only the loss settings (a subclass may carry more settings)."""
        return LossWeights(**{name: getattr(self, name) for name in LOSS_SETTING_NAMES})

    @property
    def uses_features(self) -> bool:
        return self.lambda_resdist_G > 0 or self.lambda_resdist_F > 0

    def alpha(self, target: torch.Tensor, generated: torch.Tensor) -> torch.Tensor:
        """The unweighted alpha loss of `generated` against `target`, in this form."""
        return alpha_loss(target, generated, self.alpha_norm, self.alpha_surrogate,
                          self.alpha_temperature, self.alpha_margin)


def generator_terms(x: torch.Tensor, y: torch.Tensor, G: nn.Module, F: nn.Module,
                    D_X: nn.Module, D_Y: nn.Module, w: LossWeights,
                    phi: Callable[[torch.Tensor], torch.Tensor] | None = None,
                    full_precision: Callable[[], contextlib.AbstractContextManager]
                    = contextlib.nullcontext
                    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Every term of L_Generators (section 4.1.3), weighted; and the images made on the way.

    Returns ({term: value, "total": sum}, {"fake_y": G(x), "fake_x": F(y), "rec_x", "rec_y"}).
    Terms with weight 0 are not computed (the identity and feature passes cost time).

    Under a mixed-precision autocast every term is fp32: the generators' images are (their output
    layer is), the critics' scores are cast, and Phi with its feature distance runs in
    `full_precision()` (the trainer's fp32 region; a distance between two images' features is a
    loss on small differences, and Phi costs little beside the generators).
    """
    fake_y, fake_x = G(x), F(y)
    rec_x, rec_y = F(fake_y), G(fake_x)
    terms = {
        "gan_G": lsgan_generator(D_Y(fake_y).float()),
        "gan_F": lsgan_generator(D_X(fake_x).float()),
        "cycle_A": w.lambda_A * mean_abs(x, rec_x),
        "cycle_B": w.lambda_B * mean_abs(y, rec_y),
    }
    if w.lambda_idt > 0:
        terms["idt_G"] = w.lambda_B * w.lambda_idt * mean_abs(y, G(y))
        terms["idt_F"] = w.lambda_A * w.lambda_idt * mean_abs(x, F(x))
    if w.lambda_alpha_G > 0:
        terms["alpha_G"] = w.lambda_alpha_G * w.alpha(x, fake_y)
    if w.lambda_alpha_F > 0:
        terms["alpha_F"] = w.lambda_alpha_F * w.alpha(y, fake_x)
    if w.uses_features:
        if phi is None:
            raise ValueError("ResNet feature distance weights are > 0 but no feature extractor given")
        with full_precision():
            if w.lambda_resdist_G > 0:
                with torch.no_grad():
                    target = phi(x.float())
                terms["resdist_G"] = w.lambda_resdist_G * squared_l1(target, phi(fake_y.float()))
            if w.lambda_resdist_F > 0:
                with torch.no_grad():
                    target = phi(y.float())
                terms["resdist_F"] = w.lambda_resdist_F * squared_l1(target, phi(fake_x.float()))
    terms["total"] = sum(terms.values())
    return terms, {"fake_y": fake_y, "fake_x": fake_x, "rec_x": rec_x, "rec_y": rec_y}


LOSS_SETTING_NAMES = tuple(f.name for f in fields(LossWeights))
LOSS_WEIGHT_NAMES = tuple(name for name in LOSS_SETTING_NAMES if name.startswith("lambda_"))

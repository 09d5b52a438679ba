"""The Liquid Warping GAN objectives as `impersonator`'s training script sets them (seed 004).

Generator (weights of scripts/train_iPER.sh: rec 10, tsf 10, face 5, mask 1, mask smooth 1,
adversarial 1):
    L_rec    = lambda_rec  |I_s_hat - I_s|_1               (mean absolute difference)
    L_tsf    = lambda_tsf  sum_l w_l |VGG_l(I_t_hat) - VGG_l(I_t)|_1, w = 1/32, 1/16, 1/8, 1/4, 1
               (relu1_1 .. relu5_1 of VGG-19, images fed in [-1, 1] as the original does), or
               lambda_tsf |I_t_hat - I_t|_1 without VGG weights (the original's --use_vgg off)
    L_face   = lambda_face |phi(head(I_t_hat)) - phi(head(I_t))|_1 with a face network phi
               (SphereFace in the original; off without weights)
    L_mask   = lambda_mask BCE(A, eroded background flags) over both streams' attention
    L_smooth = lambda_mask_smooth (mean |A_x+1 - A_x| + mean |A_y+1 - A_y|)
    L_adv    = lambda_adv  E[D(I_t_hat, C_t)^2]
Discriminator (least squares with the original's labels real 1, fake -1, generator target 0):
    L_D = lambda_adv (E[(D(I_t, C_t) - (1 - smoothing))^2] + E[(D(I_t_hat, C_t) + 1)^2])
          + gp_weight E[(|grad D(x_hat)|_2 - 1)^2]
`smoothing` is seed 004's one-sided label smoothing (0.1: real target 0.9); the gradient penalty
(seed 004's addition) mixes real and generated images under the same condition map.

Under the trainer's bf16 autocast every term is computed in fp32 (network outputs cast with
.float(); BCE, which CUDA's autocast refuses, the face network and the gradient penalty in the
caller's `full_precision()` region). VGG-19's features are computed in bf16 and compared in fp32:
at 256 px it is a large part of the step, unlike the face network on small head crops.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from shapepose.gan.losses import gradient_penalty, least_squares

REAL, FAKE, GENERATOR_TARGET = 1.0, -1.0, 0.0  # the original's least-squares labels
VGG_WEIGHTS = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)
VGG_SLICES = ((0, 2), (2, 7), (7, 12), (12, 21), (21, 30))  # relu1_1 .. relu5_1
FACE_SIZE = (112, 96)  # SphereFace's input (rows, columns)
HEAD_LEVEL = 0.70  # condition-map rest height (in [-1, 1]) above which a pixel is the head


@dataclass(frozen=True)
class LossWeights:
    lambda_rec: float
    lambda_tsf: float
    lambda_face: float
    lambda_mask: float
    lambda_mask_smooth: float
    lambda_adv: float
    label_smoothing: float
    gp_weight: float

    def __post_init__(self):
        for name in LossWeights.__dataclass_fields__:
            value = getattr(self, name)
            if value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        if not self.label_smoothing < 1:
            raise ValueError(f"label_smoothing must be < 1, got {self.label_smoothing}")


RANDOM_VGG_SEED = 19  # the random-weight VGG-19 (benchmarks) is the same in every process


class VGGPerceptual(nn.Module):
    """The original's VGGLoss: weighted L1 between VGG-19 relu{k}_1 features (frozen).

    `weights_path`: torchvision's VGG-19 state dict; None draws random weights from a fixed seed
    (what a benchmark times: the same network, without the ImageNet file)."""

    def __init__(self, weights_path: str | Path | None):
        super().__init__()
        import torchvision

        from shapepose.training.rng import seed_everything

        with torch.random.fork_rng(devices=[]):  # building it draws nothing of the run's
            if weights_path is None:  # a fixed stand-in for the file (benchmarks), every process
                seed_everything(RANDOM_VGG_SEED, "lwgan", "random_vgg")
            vgg = torchvision.models.vgg19(weights=None)
        if weights_path is not None:
            vgg.load_state_dict(torch.load(weights_path, map_location="cpu", weights_only=True))
        features = vgg.features
        self.slices = nn.ModuleList(nn.Sequential(*[features[i] for i in range(a, b)])
                                    for a, b in VGG_SLICES)
        for p in self.parameters():
            p.requires_grad_(False)
        self.eval()

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The weighted L1, fp32 whatever precision the features are computed in."""
        loss = x.new_zeros((), dtype=torch.float32)
        for weight, block in zip(VGG_WEIGHTS, self.slices):
            x, y = block(x), block(y)
            loss = loss + weight * (x.float() - y.detach().float()).abs().mean()
        return loss


def head_boxes(conditions: torch.Tensor) -> list[tuple[int, int, int, int] | None]:
    """(row0, row1, col0, col1) of each frame's head pixels (rest height above HEAD_LEVEL on
    the body), or None when the head is not in view."""
    head = (conditions[:, 1] > HEAD_LEVEL) & (conditions[:, -1] < 0.5)
    boxes = []
    for m in head:
        rows, cols = torch.nonzero(m, as_tuple=True)
        boxes.append(None if len(rows) == 0 else
                     (int(rows.min()), int(rows.max()) + 1, int(cols.min()), int(cols.max()) + 1))
    return boxes


def head_crops(images: torch.Tensor, boxes) -> torch.Tensor:
    crops = [F.interpolate(images[i:i + 1, :, r0:r1, c0:c1], size=FACE_SIZE, mode="bilinear",
                           align_corners=True) for i, b in enumerate(boxes) if b is not None
             for r0, r1, c0, c1 in [b]]
    return torch.cat(crops) if crops else images.new_zeros((0, 3) + FACE_SIZE)


def face_loss(face_net: nn.Module, fake: torch.Tensor, real: torch.Tensor,
              conditions: torch.Tensor, boxes: list | None = None) -> torch.Tensor:
    """|phi(head(fake)) - phi(head(real))|_1 over the frames whose head is in view (0 if none).

    `boxes`: `head_boxes(conditions)` made already, on the host (a training batch carries them,
    so that the step does not wait for the device to find them)."""
    if boxes is None:
        boxes = head_boxes(conditions)
    a, b = head_crops(fake, boxes), head_crops(real, boxes)
    if len(a) == 0:
        return fake.new_zeros(())
    return (face_net(a) - face_net(b).detach()).abs().mean()


def mask_smoothness(mask: torch.Tensor) -> torch.Tensor:
    """mean |A[..., x+1] - A[..., x]| + mean |A[y+1] - A[y]| (the original's total variation)."""
    return ((mask[..., :, 1:] - mask[..., :, :-1]).abs().mean()
            + (mask[..., 1:, :] - mask[..., :-1, :]).abs().mean())


def generator_terms(out: dict[str, torch.Tensor], inputs: dict[str, torch.Tensor],
                    critic: Callable[[torch.Tensor], torch.Tensor], w: LossWeights,
                    perceptual: nn.Module | None, face_net: nn.Module | None,
                    full_precision: Callable[[], contextlib.AbstractContextManager]
                    = contextlib.nullcontext) -> dict[str, torch.Tensor]:
    """Every weighted generator term and their sum ("total"); terms with weight 0 or without
    their network are left out. `full_precision`: the caller's fp32 region (module doc)."""
    fake, real = out["tsf_image"], inputs["ref"]
    terms = {"g_rec": w.lambda_rec * (out["src_image"] - inputs["src"]).abs().mean()}
    if perceptual is not None:
        terms["g_tsf"] = w.lambda_tsf * perceptual(fake, real)
    else:
        terms["g_tsf"] = w.lambda_tsf * (fake - real).abs().mean()
    with full_precision():
        if face_net is not None and w.lambda_face > 0:
            terms["g_face"] = w.lambda_face * face_loss(face_net, fake.float(), real.float(),
                                                        inputs["ref_cond"],
                                                        inputs.get("head_boxes"))
        masks = torch.cat([out["src_attention"], out["tsf_attention"]], dim=0).float()
        terms["g_mask"] = w.lambda_mask * F.binary_cross_entropy(masks,
                                                                 inputs["attention_target"])
    if w.lambda_mask_smooth > 0:
        terms["g_mask_smooth"] = w.lambda_mask_smooth * mask_smoothness(masks)
    terms["g_adv"] = w.lambda_adv * least_squares(critic(fake).float(), GENERATOR_TARGET)
    terms["total"] = sum(terms.values())
    return terms


def discriminator_terms(critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor,
                        fake: torch.Tensor, w: LossWeights, generator: torch.Generator | None,
                        *, penalty_critic: Callable[[torch.Tensor], torch.Tensor] | None = None,
                        full_precision: Callable[[], contextlib.AbstractContextManager]
                        = contextlib.nullcontext, shard: tuple[int, slice] | None = None
                        ) -> dict[str, torch.Tensor]:
    """L_D's terms ("d_loss" the total), and the mean real and fake scores (seed 004's plots).

    The gradient penalty runs in `full_precision()` through `penalty_critic` (default `critic`;
    the trainer's is uncompiled, `gan.losses.uncompiled`); `shard` as in
    `gan.losses.critic_gradient_norms`."""
    fake = fake.detach()
    real_scores, fake_scores = critic(real).float(), critic(fake).float()
    terms = {"d_real_loss": w.lambda_adv * least_squares(real_scores, REAL - w.label_smoothing),
             "d_fake_loss": w.lambda_adv * least_squares(fake_scores, FAKE)}
    if w.gp_weight > 0:
        with full_precision():
            terms["d_gp"] = w.gp_weight * gradient_penalty(penalty_critic or critic, real.float(),
                                                           fake.float(), generator, shard)
    terms["d_loss"] = sum(terms.values())
    terms["d_real"], terms["d_fake"] = real_scores.mean().detach(), fake_scores.mean().detach()
    return terms

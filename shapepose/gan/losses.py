"""The adversarial objectives and stabilizers that more than one GAN stage shares (seed 004).

Least-squares GAN terms, one-sided label smoothing (a real label below 1) and the WGAN-GP
gradient penalty on a PatchGAN critic (the gradient of the summed patch map), used by the AIST
CycleGAN (shapepose.style) and the Liquid Warping GAN (shapepose.lwgan).
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def least_squares(scores: torch.Tensor, target: float) -> torch.Tensor:
    """E[(D(x) - target)^2] over every patch and sample."""
    return (scores - target).square().mean()


def lsgan_discriminator(real_scores: torch.Tensor, fake_scores: torch.Tensor,
                        real_label: float = 1.0) -> torch.Tensor:
    """1/2 E[(D(real) - real_label)^2] + 1/2 E[D(fake)^2]: the halved discriminator objective.

    `real_label` < 1 is seed 004's one-sided label smoothing (0.9: penalize D above 0.9 on real
    images); fake images keep the label 0.
    """
    return 0.5 * (real_scores - real_label).square().mean() + 0.5 * fake_scores.square().mean()


def lsgan_generator(fake_scores: torch.Tensor) -> torch.Tensor:
    """E[(1 - D(G(x)))^2]: the generator wants its images scored as real."""
    return (1.0 - fake_scores).square().mean()


def critic_gradient_norms(critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor,
                          fake: torch.Tensor, generator: torch.Generator | None = None,
                          create_graph: bool = False, shard: tuple[int, slice] | None = None
                          ) -> torch.Tensor:
    """(B,) |grad_x sum_patches D(x)|_2 at x_hat = e real + (1 - e) fake, e ~ U[0, 1] per sample.

    The gradient is that of the critic's whole patch map summed (autograd with grad_outputs of
    ones), as WGAN-GP on a PatchGAN is computed by pytorch-CycleGAN-and-pix2pix
    (`networks.cal_gradient_penalty`), the Liquid Warping GAN code and seed 004's code. Samples do
    not interact (instance norm), so each sample's gradient is that of its own patches. The mean
    patch score's gradient is this divided by the number of patches (196 at 128 px): for a freshly
    initialised critic at ndf 8 its norm is about 0.05 (the summed map's about 9), so a penalty
    on the mean would push the critic to be steeper instead of towards 1-Lipschitz.

    e is drawn on the CPU from `generator`. `shard` = (global batch, this process's slice of it)
    under several processes: e is drawn for every sample of the global batch and the slice kept,
    so N processes mix their samples as one process does.
    """
    count, part = shard if shard is not None else (real.shape[0], slice(None))
    eps = torch.rand(count, 1, 1, 1, generator=generator, device="cpu")[part]
    if real.is_cuda:  # page-locked, so that the copy does not wait for the GPU's queued work
        eps = eps.pin_memory()
    eps = eps.to(real.device, real.dtype, non_blocking=True)
    mixed = (eps * real.detach() + (1.0 - eps) * fake.detach()).requires_grad_(True)
    scores = critic(mixed)
    grad, = torch.autograd.grad(scores.sum(), mixed, create_graph=create_graph)
    # the reference code's 1e-16 keeps the norm's derivative finite at a zero gradient
    return (grad.flatten(1) + 1e-16).norm(dim=1)


def gradient_penalty(critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor,
                     fake: torch.Tensor, generator: torch.Generator | None = None,
                     shard: tuple[int, slice] | None = None) -> torch.Tensor:
    """E[(|grad D(x_hat)|_2 - 1)^2] (Gulrajani et al.; seed 004), D(x_hat) the summed patch map.

    See `critic_gradient_norms`. Differentiable in the critic's parameters; multiply by the weight.
    The critic is differentiated twice, which a torch.compile'd module cannot be: pass the
    uncompiled one (`uncompiled`). Under mixed precision run it in fp32 (the trainer's
    `accel.full_precision()`, inputs cast with .float()): a gradient of the critic, differentiated
    again, is no place for bf16 rounding.
    """
    norms = critic_gradient_norms(critic, real, fake, generator, create_graph=True, shard=shard)
    return (norms - 1.0).square().mean()


def uncompiled(module: torch.nn.Module) -> torch.nn.Module:
    """The module a torch.compile'd `module` wraps (its DDP wrapper, if any, kept), else `module`:
    what the gradient penalty calls, since compiled graphs cannot be differentiated twice."""
    return getattr(module, "_orig_mod", module)

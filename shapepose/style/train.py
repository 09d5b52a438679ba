"""Training the annotation-invariant CycleGAN (seed 002 chapter 4, section 6.1.1) with seed 004's
stabilizers, on the shared trainer (resume, SIGTERM, best checkpoint, history).

One step is the stock CycleGAN update: both generators on L_Generators with the discriminators
frozen, then both discriminators on their halved LSGAN objectives against pooled fakes (plus the
gradient penalty when its weight is > 0). Learning rates are a pure function of the step (TTUR:
separate generator and discriminator rates, optionally decaying linearly to a final rate), one
LambdaLR per optimizer that the trainer steps and checkpoints with the weights and pools.

Best checkpoint ("val_score", lower is better), on the synthetic validation split:
    val_score = fd_ratio + 100 * max(0, alpha_disagreement - alpha_tolerance)
`alpha_disagreement` is the share of pixels whose Alpha differs between x and G(x): the
annotations the downstream model learns from are the silhouettes, so a generator that moves
them is unusable however real it looks (each percent over the tolerance costs a whole unit).
`fd_ratio` measures realism without a learned critic that drifts during training: a Frechet
distance with diagonal covariances between globally pooled Phi features of G(X_val) and of the
real training cut-outs, divided by the same distance for the unstylized X_val (1 = no closer to
the real images than the synthetic renders were, 0 = indistinguishable by these statistics).
Validation also records each critic's mean gradient norm between real and generated images
(val_grad_norm_D_X, val_grad_norm_D_Y), the quantity the gradient penalty drives towards 1.

The fast path (`shapepose.training.fast`): a step's images are read and flipped on the host
(`make_batch` in `train_cyclegan`, a pure function of the seed and the step, so DataLoader
workers may make it); the step (`CycleGAN.train_step`) runs the networks under the run's autocast
with the parts that rounding would change in fp32 (see PRECISIONS).

Several processes (`shapepose.training.distributed`): every rank draws the whole global batch's
images and flips and keeps its `Trainer.shard`; the generators and, in their own update, the
critics train through their DDP wrappers (in the generators' update the frozen critics are called
unwrapped). What is not the one-process run: each rank keeps its own image pools, filled with its
own generated images and swapped by the same step generator as every other rank's, so the
critics see other fakes than one process's critics would (a checkpoint holds rank 0's pools,
which every rank takes on a resume); and the gradient penalty's mixing weights, drawn after the
pools' swaps, are each rank's own. Instance norm normalizes each image on its own, so the
networks' forward passes are the one-process ones.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from shapepose.config import section
from shapepose.errors import InputError
from shapepose.gan.losses import uncompiled
from shapepose.gan.networks import set_requires_grad
from shapepose.gan.schedule import linear_decay
from shapepose.images.rgba import mask_disagreement
from shapepose.style.data import Domain, cutout_refs, synthetic_refs
from shapepose.style.features import ResNetFeatures, weights_stamp
from shapepose.style.losses import (
    LossWeights,
    alpha_mask,
    critic_gradient_norms,
    generator_terms,
    gradient_penalty,
    lsgan_discriminator,
)
from shapepose.style.networks import build_discriminator, build_generator
from shapepose.style.pool import ImagePool
from shapepose.training import TrainConfig, Trainer, pick_device, seed_everything
from shapepose.training.batches import epoch_walk, step_generator, steps_per_epoch
from shapepose.training.fast import Acceleration, FastPath
from shapepose.training.rng import derive_torch_generator
from shapepose.training.fingerprint import data_fingerprint

log = logging.getLogger(__name__)

STAGE = "style_transfer"  # the first label of every random stream of this stage

VIOLATION_COST = 100.0  # val_score units per unit of alpha disagreement over the tolerance
# Low precisions the CycleGAN allows (fast_path.precision): bf16 autocast for the generators'
# and critics' convolutions. What its rounding would change stays fp32: the generators' output
# layer (`networks.ResnetGenerator`: the alpha loss tests outputs against -1 + 1/255, within one
# bf16 step (1/256) of -1, and its hinge form takes atanh of them), Phi and the feature distance,
# every loss (`losses.generator_terms`), and the gradient penalty (a gradient of the critic,
# differentiated again). Not fp16: its loss scaler skips an update whenever its gradients
# overflow, the generators' and the critics' independently, an imbalance of the adversarial game
# that bf16, needing no scaler, does not have.
PRECISIONS = ("bf16",)


@dataclass(frozen=True)
class Experiment(LossWeights):
    """One named style-transfer configuration: the loss weights (inherited) and seed 004's
    stabilizers."""

    lr_g: float              # TTUR: generator and discriminator learning rates
    lr_d: float
    beta1: float             # Adam's beta1 in the stock CycleGAN
    lr_final: float | None   # both rates decay linearly to this (None: constant)
    decay_start_epoch: float  # ... starting at this epoch ...
    decay_epochs: float      # ... over this many epochs, then stay at lr_final
    label_smoothing: float   # one-sided: real images get the label 1 - this
    gp_weight: float         # gradient penalty on both discriminators (0: off)
    spectral_norm: bool      # on every discriminator convolution

    def __post_init__(self):
        super().__post_init__()
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.gp_weight < 0 or self.lr_g <= 0 or self.lr_d <= 0 or self.decay_epochs <= 0:
            raise ValueError("gp_weight must be >= 0; lr_g, lr_d and decay_epochs > 0")

    @classmethod
    def from_config(cls, config: dict, name: str = "?") -> Experiment:
        """One experiment's full settings (style_transfer.defaults with its own on top)."""
        return section(cls, config, where=f"style_transfer.experiments.{name}")

    @property
    def weights(self) -> LossWeights:
        return self.loss_weights

    def learning_rates(self, step: int, epoch_steps: int) -> tuple[float, float]:
        """(generator, discriminator) learning rate for optimizer step `step` (0-based)."""
        epoch = step / epoch_steps
        return tuple(linear_decay(lr, self.lr_final, epoch, self.decay_start_epoch,
                                  self.decay_epochs) for lr in (self.lr_g, self.lr_d))


@dataclass(frozen=True)
class Architecture:
    """Config style_transfer.model: generator and critic widths, residual blocks, image side."""

    ngf: int
    ndf: int
    n_blocks: int
    image_size: int


class CycleGAN:
    """G: X -> Y, F: Y -> X, their critics D_X and D_Y, optimizers and image pools."""

    def __init__(self, arch: Architecture, exp: Experiment, pool_size: int,
                 phi: nn.Module | None, device: torch.device):
        self.arch, self.exp, self.device, self.phi = arch, exp, device, phi
        self.G = build_generator(arch.ngf, arch.n_blocks).to(device)
        self.F = build_generator(arch.ngf, arch.n_blocks).to(device)
        self.D_X = build_discriminator(arch.ndf, exp.spectral_norm).to(device)
        self.D_Y = build_discriminator(arch.ndf, exp.spectral_norm).to(device)
        betas = (exp.beta1, 0.999)
        self.opt_G = torch.optim.Adam([*self.G.parameters(), *self.F.parameters()], lr=exp.lr_g,
                                      betas=betas)
        self.opt_D = torch.optim.Adam([*self.D_X.parameters(), *self.D_Y.parameters()],
                                      lr=exp.lr_d, betas=betas)
        self.pool_x = ImagePool(pool_size, device)  # past F(y): fakes for D_X
        self.pool_y = ImagePool(pool_size, device)  # past G(x): fakes for D_Y
        # what train_step runs: the plain path and the networks themselves until `train_through`
        self.accel = Acceleration(FastPath.off(), torch.device(device))
        self.nets = self.modules

    @property
    def modules(self) -> dict[str, nn.Module]:
        return {"G": self.G, "F": self.F, "D_X": self.D_X, "D_Y": self.D_Y}

    def train_through(self, accel: Acceleration,
                      wrap: Callable[..., nn.Module]) -> None:
        """Train with `accel`'s fast path, through `wrap(net, convolutional=True)` of each network:
        the trainer's `wrap` (channels-last, DDP, compile), or a benchmark's one-process copy of
        it. Phi, frozen, only takes the memory format."""
        self.accel = accel
        self.nets = {name: wrap(net, convolutional=True) for name, net in self.modules.items()}
        if self.phi is not None:
            accel.prepare(self.phi, convolutional=True)

    def lr_schedulers(self, epoch_steps: int) -> dict[str, torch.optim.lr_scheduler.LambdaLR]:
        """The TTUR schedule as one LambdaLR per optimizer (the trainer steps them)."""
        exp = self.exp
        return {"G": torch.optim.lr_scheduler.LambdaLR(
                    self.opt_G, lambda step: exp.learning_rates(step, epoch_steps)[0] / exp.lr_g),
                "D": torch.optim.lr_scheduler.LambdaLR(
                    self.opt_D, lambda step: exp.learning_rates(step, epoch_steps)[1] / exp.lr_d)}

    def train_step(self, x: torch.Tensor, y: torch.Tensor, gen: torch.Generator
                   ) -> dict[str, torch.Tensor]:
        """One update of both generators, then both discriminators; returns every loss term
        (detached tensors: nothing here waits for the device).

        x, y: the step's images on the device; gen: the step's generator after the flips
        (`step_draws`), for the pools' swaps and the gradient penalty's mixing weights.
        """
        exp, accel, nets = self.exp, self.accel, self.nets
        x, y = accel.images(x), accel.images(y)
        critics = (self.D_X, self.D_Y)
        set_requires_grad(critics, False)
        with accel.autocast():  # the frozen critics unwrapped: DDP wants gradients for its own
            terms, images = generator_terms(x, y, nets["G"], nets["F"], self.D_X, self.D_Y,
                                            exp.weights, self.phi, accel.full_precision)
        self.opt_G.zero_grad(set_to_none=True)
        accel.backward(terms["total"])
        accel.step(self.opt_G)

        set_requires_grad(critics, True)
        fake_y = accel.images(self.pool_y.query(images["fake_y"], gen))
        fake_x = accel.images(self.pool_x.query(images["fake_x"], gen))
        real_label = 1.0 - exp.label_smoothing
        D_X, D_Y = nets["D_X"], nets["D_Y"]
        with accel.autocast():
            d_y = lsgan_discriminator(D_Y(y).float(), D_Y(fake_y).float(), real_label)
            d_x = lsgan_discriminator(D_X(x).float(), D_X(fake_x).float(), real_label)
        out = {f"G_{k}" if k == "total" else k: v.detach() for k, v in terms.items()}
        out.update(D_Y=d_y.detach(), D_X=d_x.detach())
        if exp.gp_weight > 0:
            with accel.full_precision():
                gp_y = gradient_penalty(uncompiled(D_Y), y.float(), fake_y.float(), gen)
                gp_x = gradient_penalty(uncompiled(D_X), x.float(), fake_x.float(), gen)
            d_y, d_x = d_y + exp.gp_weight * gp_y, d_x + exp.gp_weight * gp_x
            out.update(gp_Y=gp_y.detach(), gp_X=gp_x.detach())
        self.opt_D.zero_grad(set_to_none=True)
        accel.backward(d_y + d_x)
        accel.step(self.opt_D)
        return out


def step_draws(seed: int, step: int, batch: int) -> tuple[torch.Generator, torch.Tensor]:
    """Step `step`'s torch generator and its first draws: the (2, batch) mirror flips of the
    global batch's x and y images. The batch takes the flips, the step the generator (whose
    next draws are the pools' swaps and the gradient penalty's mixing weights)."""
    gen = step_generator(seed, step, STAGE)
    flips = torch.rand(2, batch, generator=gen) < 0.5
    return gen, flips


def pooled_features(phi: nn.Module, images: torch.Tensor, batch: int = 16) -> np.ndarray:
    """(N, 512) float64: Phi's feature maps averaged over space."""
    rows = [phi(images[i:i + batch]).mean(dim=(2, 3)).double().cpu() for i in range(0, len(images), batch)]
    return torch.cat(rows).numpy()


def diagonal_frechet(a: np.ndarray, b: np.ndarray) -> float:
    """|mu_a - mu_b|^2 + |sigma_a - sigma_b|^2 per feature: Frechet distance, diagonal covariances."""
    return float(np.sum((a.mean(0) - b.mean(0)) ** 2) + np.sum((a.std(0) - b.std(0)) ** 2))


def alpha_disagreement(x: torch.Tensor, stylized: torch.Tensor) -> torch.Tensor:
    """(B,) share of pixels whose Alpha differs between each input and its stylized image.

    x, stylized: (B, 3, H, W); the result has x's dtype and device.
    """
    masks = [alpha_mask(t)[:, 0].bool().cpu().numpy() for t in (x, stylized)]
    # float64 shares rounded once to float32 equal float32's own count / (H W), bit for bit
    return torch.from_numpy(mask_disagreement(*masks)).to(device=x.device, dtype=x.dtype)


def generate(net: nn.Module, images: torch.Tensor, device: torch.device, batch: int = 8) -> torch.Tensor:
    """net(images) in batches, without gradients, on `device`; returned on the CPU."""
    with torch.no_grad():
        return torch.cat([net(images[i:i + batch].to(device)).cpu()
                          for i in range(0, len(images), batch)])


def train_cyclegan(*, X: Domain, Y: Domain, X_val: Domain | None, checkpoint_dir: str | Path,
                   arch: Architecture, exp: Experiment, training: dict, features: str | None,
                   seed: int, device: torch.device, fingerprint_extra: dict | None = None,
                   fast_path: dict | None = None, rule: str | None = None
                   ) -> tuple[Trainer, CycleGAN, dict]:
    """Train (or resume) to `training["steps"]`; returns the trainer, the model and a summary.

    fast_path: the config's `fast_path` section (None: the plain path); rule: the Snakemake rule,
    named in an out-of-memory error."""
    batch = int(training["batch_size"])
    epoch_steps = steps_per_epoch(max(len(X), len(Y)), batch)
    seed_everything(seed, STAGE, "init")  # the initial weights follow the config seed
    phi = ResNetFeatures(features).to(device)
    model = CycleGAN(arch, exp, int(training["pool_size"]), phi, device)
    schedulers = model.lr_schedulers(epoch_steps)
    fingerprint = {"architecture": vars(arch), "experiment": vars(exp), "training": training,
                   "features": weights_stamp(features), **(fingerprint_extra or {})}
    trainer = Trainer(
        checkpoint_dir, fingerprint=fingerprint, modules=model.modules,
        optimizers={"G": model.opt_G, "D": model.opt_D}, lr_schedulers=schedulers,
        states={"pool_x": model.pool_x, "pool_y": model.pool_y}, seed=seed, stage=STAGE,
        device=device, config=TrainConfig.from_section(training, best_metric="val_score",
                                                       best_mode="min", validate=X_val is not None),
        fast_path=fast_path, precisions=PRECISIONS,
        batch_size=("style_transfer.training.batch_size", batch), rule=rule)
    model.train_through(trainer.accel, trainer.wrap)
    part = trainer.shard(batch)
    log.info("style transfer: %d synthetic and %d real training images, %d steps of %d "
             "(%.1f epochs of %d steps), device %s, Phi %s", len(X), len(Y), training["steps"],
             batch, training["steps"] / epoch_steps, epoch_steps, device, phi.source)

    def make_batch(step: int) -> dict[str, torch.Tensor]:
        _, flips = step_draws(seed, step, batch)
        ix = epoch_walk(len(X), batch, step, seed, STAGE, "synthetic")[part]
        iy = epoch_walk(len(Y), batch, step, seed, STAGE, "real")[part]
        return {"x": X.tensor(ix, flips[0, part].tolist()),
                "y": Y.tensor(iy, flips[1, part].tolist())}

    def step_fn(step: int, images: dict[str, torch.Tensor]) -> dict[str, torch.Tensor | float]:
        gen, _ = step_draws(seed, step, batch)
        lr_g, lr_d = (scheduler.get_last_lr()[0] for scheduler in schedulers.values())
        losses = model.train_step(images["x"], images["y"], gen)
        losses.update(lr_G=lr_g, lr_D=lr_d)
        return losses

    reference: dict = {}

    def validate_fn() -> dict[str, float]:
        if not reference:  # Phi is fixed, so the real and unstylized features are computed once
            reference["x"] = X_val.tensor(range(len(X_val)))
            reference["real"] = pooled_features(phi, Y.tensor(range(len(Y))).to(device))
            reference["synthetic"] = pooled_features(phi, reference["x"].to(device))
            reference["fd0"] = diagonal_frechet(reference["synthetic"], reference["real"])
        x = reference["x"]
        stylized = generate(model.G, x, device)
        disagreement = float(alpha_disagreement(x, stylized).mean())
        fd = diagonal_frechet(pooled_features(phi, stylized.to(device)), reference["real"])
        fd_ratio = fd / max(reference["fd0"], 1e-12)
        tolerance = float(training["alpha_tolerance"])
        score = fd_ratio + VIOLATION_COST * max(0.0, disagreement - tolerance)
        return {"val_score": score, "val_fd_ratio": fd_ratio, "val_alpha_disagreement": disagreement,
                **critic_gradients(x, stylized)}

    def critic_gradients(x: torch.Tensor, stylized: torch.Tensor) -> dict[str, float]:
        """Mean |grad D| of each critic between real and generated validation images: what the
        gradient penalty drives towards 1 (recorded with or without it, so runs compare)."""
        n = min(len(x), len(Y))
        # the same interpolates at every validation
        gen = derive_torch_generator(seed, STAGE, "validation", "interpolates")
        real_y = Y.tensor(range(n))
        fake_x = generate(model.F, real_y, device)
        with torch.enable_grad():
            norm_y = critic_gradient_norms(model.D_Y, real_y.to(device), stylized[:n].to(device), gen)
            norm_x = critic_gradient_norms(model.D_X, x[:n].to(device), fake_x.to(device), gen)
        return {"val_grad_norm_D_Y": float(norm_y.mean()), "val_grad_norm_D_X": float(norm_x.mean())}

    result = trainer.fit(step_fn, validate_fn if X_val else None, batches=make_batch)
    summary = {"n_x": len(X), "n_y": len(Y), "n_val": len(X_val) if X_val else 0,
               "steps_per_epoch": epoch_steps, "epochs": training["steps"] / epoch_steps,
               "best_step": result.best_step, "best_metrics": result.best_metrics,
               "resumed_from": result.resumed_from, "phi": phi.source}
    return trainer, model, summary


def train_style_transfer(*, synthetic: str, real_train: str, out: str, losses_csv: str,
                         checkpoint_dir: str, experiment_name: str, experiment: dict,
                         model: dict, training: dict, features: str | None, seed: int,
                         device: str, fast_path: dict | None = None,
                         rule: str | None = None) -> dict:
    """The rule's work: train one experiment and export its best checkpoint and loss history.

    fast_path: the config's `fast_path` section (None: the plain path); rule: the Snakemake rule,
    named in an out-of-memory error."""
    device = pick_device(device)
    exp = Experiment.from_config(experiment, experiment_name)
    arch = section(Architecture, model, where="style_transfer.model")
    if arch.image_size % 4:
        raise ValueError(f"style_transfer.model.image_size must be a multiple of 4, got {arch.image_size}")
    cache = int(training["cache_images"])
    x_refs, y_refs = synthetic_refs(synthetic, "train"), cutout_refs(real_train)
    if not y_refs:
        raise InputError(real_train, "no real training cut-outs (*.png); the filters kept none")
    val_refs = synthetic_refs(synthetic, "val")[: int(training["val_images"])]
    X = Domain(x_refs, arch.image_size, f"{synthetic} (train)", cache)
    Y = Domain(y_refs, arch.image_size, real_train, cache)
    X_val = Domain(val_refs, arch.image_size, f"{synthetic} (val)", cache) if val_refs else None
    stamp = {"synthetic": data_fingerprint([r.path for r in x_refs + val_refs], root=synthetic),
             "real": data_fingerprint([r.path for r in y_refs], root=real_train)}
    trainer, net, summary = train_cyclegan(
        X=X, Y=Y, X_val=X_val, checkpoint_dir=checkpoint_dir, arch=arch, exp=exp,
        training=training, features=features, seed=seed, device=device,
        fingerprint_extra={"data": stamp}, fast_path=fast_path, rule=rule)
    extra = {"experiment": experiment_name, "settings": vars(exp), "architecture": vars(arch),
             "summary": json.loads(json.dumps(summary, default=str))}
    trainer.export(out, which="best", extra=extra)
    trainer.write_losses(losses_csv)
    return extra


def untrained_generator(exported: dict, device: torch.device) -> nn.Module:
    """G of a file written by `train_style_transfer` at its step-0 weights, in eval mode.

    train_cyclegan seeds (seed, STAGE, "init") and builds G first (Phi draws nothing from the
    global generator), so the seed the file records rebuilds it; the torch RNG state of the
    caller is left as it was.
    """
    arch = Architecture(**exported["meta"]["extra"]["architecture"])
    with torch.random.fork_rng(devices=[]):
        seed_everything(int(exported["meta"]["seed"]), STAGE, "init")
        net = build_generator(arch.ngf, arch.n_blocks)
    return net.to(device).eval()


def load_generators(exported: dict, device: torch.device) -> tuple[nn.Module, nn.Module]:
    """(G, F) of a file written by `train_style_transfer`, in eval mode on `device`."""
    arch = Architecture(**exported["meta"]["extra"]["architecture"])
    nets = []
    for name in ("G", "F"):
        net = build_generator(arch.ngf, arch.n_blocks)
        net.load_state_dict(exported[name])
        nets.append(net.to(device).eval())
    return nets[0], nets[1]

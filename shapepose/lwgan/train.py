"""Training one experiment of seed 004's stabilizer study on the shared trainer.

One step is the original's `optimize_parameters`: a batch of (source, reference) frame pairs of
one training video each (source: the next frames of an epoch walk over every training frame;
reference: another frame of the same video, drawn from the step's generator), the generator on
its weighted terms with the discriminator frozen, then the discriminator on the detached
transfer images (plus the gradient penalty when its weight is > 0).

Learning rates (TTUR: separate generator and discriminator rates) are a pure function of the
step: held for `decay_start_epoch` epochs, then linear to `lr_final` over `decay_epochs`. The
original lowers them once per epoch and does not save them, so its resume restarts the schedule;
here one LambdaLR per optimizer is stepped and checkpointed by the trainer, so a resumed run has
the same rates as an uninterrupted one. An epoch is one pass over the training frames.

Validation (`val_masked_l1`, lower is better, in losses.csv): mean absolute error on the body of
the reference, in [0, 2] units of the [-1, 1] images, of self-imitation on fixed held-out pairs.
The evaluation uses the same held-out actors, so the exported model is the last checkpoint, not
the best by this metric (selecting on the test actors would flatter the table).

The fast path (`shapepose.training.fast`): a step's pairs, frames and flows are made on the host
(`make_batch` in `train_lwgan`: `inputs.pair_frames`, a pure function of the seed and the step,
so DataLoader workers may make it, and the face loss's head boxes); the step finishes the inputs
on the device (`inputs.assemble_inputs`) and runs the networks under the run's autocast with the
parts that rounding would change in fp32 (see PRECISIONS).

Several processes (`shapepose.training.distributed`): every rank draws the whole global batch's
pairs and the gradient penalty's mixing weights and keeps its `Trainer.shard`; the generator and,
in its own update, the critic train through their DDP wrappers (the frozen critic of the
generator's update is called unwrapped). Instance norm normalizes each sample on its own, so N
processes make one process's update up to the order of additions, but for the face loss: a mean
over the frames whose head is in view, which each rank takes over its own frames.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from shapepose.config import section
from shapepose.gan.losses import uncompiled
from shapepose.gan.networks import set_requires_grad
from shapepose.gan.schedule import linear_decay
from shapepose.lwgan.inputs import (COND_CHANNELS, Morphology, VideoTensors, assemble_inputs,
                                    load_videos, pair_frames, pair_inputs)
from shapepose.lwgan.data import read_split
from shapepose.lwgan.losses import LossWeights, discriminator_terms, generator_terms, head_boxes
from shapepose.lwgan.model import build_discriminator, build_generator
from shapepose.training import Trainer, TrainConfig, pick_device, seed_everything
from shapepose.training.batches import epoch_walk, step_rng, steps_per_epoch
from shapepose.training.fast import Acceleration, FastPath
from shapepose.training.fingerprint import data_fingerprint
from shapepose.training.rng import derive_torch_generator

log = logging.getLogger(__name__)

STAGE = "lwgan"
# Low precisions the Liquid Warping GAN allows (fast_path.precision): bf16 autocast for its
# convolutions. What its rounding would change stays fp32: the generator's output heads
# (`model`: a bf16 sigmoid rounds to exactly 1 from a logit of 6.2, fp32's from 16.6, and the
# attention loss gets no gradient through it there), every loss, the face network, and the
# gradient penalty (a gradient of the critic, differentiated again); see `losses`. Not fp16: its
# loss scaler skips an update whenever its gradients overflow, the generator's and the critic's
# independently, an imbalance of the adversarial game that bf16, needing no scaler, does not have.
PRECISIONS = ("bf16",)


@dataclass(frozen=True)
class Experiment(LossWeights):
    """One experiment: the loss weights and stabilizers (inherited), optimizers and schedule."""

    lr_g: float
    lr_d: float
    lr_final: float | None
    beta1: float
    beta2: float
    decay_start_epoch: float
    decay_epochs: float
    spectral_norm: bool

    def __post_init__(self):
        super().__post_init__()
        if self.lr_g <= 0 or self.lr_d <= 0 or self.decay_epochs <= 0:
            raise ValueError("lr_g, lr_d and decay_epochs must be > 0")

    @property
    def weights(self) -> LossWeights:
        return LossWeights(**{k: getattr(self, k) for k in LossWeights.__dataclass_fields__})

    def learning_rates(self, step: int, epoch_steps: int) -> tuple[float, float]:
        epoch = step / epoch_steps
        return tuple(linear_decay(lr, self.lr_final, epoch, self.decay_start_epoch,
                                  self.decay_epochs) for lr in (self.lr_g, self.lr_d))


@dataclass(frozen=True)
class Architecture:
    """Config lwgan.model."""

    image_size: int
    conv_dim: int
    n_blocks: int
    n_down: int
    ndf: int
    d_layers: int
    crop_kernel: int
    background_kernel: int

    @property
    def morphology(self) -> Morphology:
        return Morphology(self.crop_kernel, self.background_kernel)


def experiment_settings(defaults: dict, overrides: dict, name: str) -> Experiment:
    return section(Experiment, {**defaults, **(overrides or {})}, where=f"lwgan.experiments.{name}")


def build_networks(arch: Architecture, exp: Experiment) -> tuple[nn.Module, nn.Module]:
    G = build_generator(COND_CHANNELS, arch.conv_dim, arch.n_blocks, arch.n_down)
    D = build_discriminator(3 + COND_CHANNELS, arch.ndf, arch.d_layers, exp.spectral_norm)
    return G, D


def initial_networks(arch: Architecture, exp: Experiment, seed: int) -> tuple[nn.Module, nn.Module]:
    """The networks a run with `seed` starts from (torch's generator seeded with
    derive_seed(seed, "lwgan", "init")), the caller's torch RNG state left as it was."""
    with torch.random.fork_rng(devices=[]):
        seed_everything(seed, STAGE, "init")
        return build_networks(arch, exp)


def frame_index(videos: list[VideoTensors]) -> list[tuple[int, int]]:
    return [(v, t) for v, video in enumerate(videos) for t in range(len(video))]


def draw_pairs(videos, frames, batch: int, step: int, seed: int) -> list[tuple[int, int, int]]:
    """Step `step`'s (video, source, reference) pairs: sources walk the frames epoch by epoch,
    each reference another frame of the source's video."""
    rng = step_rng(seed, step, STAGE, "reference")
    pairs = []
    for i in epoch_walk(len(frames), batch, step, seed, STAGE, "stream"):
        v, s = frames[i]
        r = int(rng.integers(len(videos[v]) - 1))
        pairs.append((v, s, r + (r >= s)))
    return pairs


def self_imitation_pairs(videos: list[VideoTensors], per_video: int | None = None
                         ) -> list[tuple[int, int, int]]:
    """(video, 0, t): every video reconstructed from its first frame (the original's protocol),
    `per_video` evenly spaced references per video (None: every later frame)."""
    pairs = []
    for v, video in enumerate(videos):
        refs = np.arange(1, len(video))
        if per_video is not None and per_video < len(refs):
            refs = refs[np.linspace(0, len(refs) - 1, per_video).round().astype(int)]
        pairs += [(v, 0, int(t)) for t in refs]
    return pairs


def masked_l1(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B,) mean |pred - target| over the channels of the pixels where mask (B, 1, S, S) is 1."""
    per = (pred - target).abs().mean(dim=1, keepdim=True) * mask
    return per.flatten(1).sum(1) / mask.flatten(1).sum(1).clamp_min(1)


class LWGAN:
    """Generator, discriminator, their optimizers and one training step."""

    def __init__(self, arch: Architecture, exp: Experiment, seed: int, device: torch.device,
                 perceptual: nn.Module | None = None, face_net: nn.Module | None = None):
        self.arch, self.exp, self.device = arch, exp, device
        self.G, self.D = (net.to(device) for net in initial_networks(arch, exp, seed))
        self.opt_G = torch.optim.Adam(self.G.parameters(), lr=exp.lr_g, betas=(exp.beta1, exp.beta2))
        self.opt_D = torch.optim.Adam(self.D.parameters(), lr=exp.lr_d, betas=(exp.beta1, exp.beta2))
        # the frozen loss networks on the generator's device (loaded on the CPU)
        self.perceptual, self.face_net = (None if net is None else net.to(device)
                                          for net in (perceptual, face_net))
        # what train_step runs: the plain path, the networks themselves and the whole batch in
        # this process until `train_through`
        self.accel = Acceleration(FastPath.off(), torch.device(device))
        self.nets = {"G": self.G, "D": self.D}
        self.shard: tuple[int, slice] | None = None

    @property
    def uses_face(self) -> bool:
        return self.face_net is not None and self.exp.lambda_face > 0

    def train_through(self, accel: Acceleration, wrap: Callable[..., nn.Module],
                      shard: tuple[int, slice] | None = None) -> None:
        """Train with `accel`'s fast path, through `wrap(net, convolutional=True)` of G and D:
        the trainer's `wrap` (channels-last, DDP, compile), or a benchmark's one-process copy of
        it. `shard`: (global batch, this process's `Trainer.shard`), for the gradient penalty's
        mixing weights. The frozen perceptual and face networks only take the memory format."""
        self.accel = accel
        self.nets = {name: wrap(net, convolutional=True) for name, net in
                     (("G", self.G), ("D", self.D))}
        self.shard = shard
        for net in (self.perceptual, self.face_net):
            if net is not None:
                accel.prepare(net, convolutional=True)

    def lr_schedulers(self, epoch_steps: int) -> dict:
        exp = self.exp
        return {"G": torch.optim.lr_scheduler.LambdaLR(
                    self.opt_G, lambda step: exp.learning_rates(step, epoch_steps)[0] / exp.lr_g),
                "D": torch.optim.lr_scheduler.LambdaLR(
                    self.opt_D, lambda step: exp.learning_rates(step, epoch_steps)[1] / exp.lr_d)}

    def critic(self, D: nn.Module, condition: torch.Tensor):
        """The conditional critic: an image scored with the reference condition map."""
        return lambda image: D(self.accel.images(torch.cat([image, condition], dim=1)))

    def train_step(self, inputs: dict[str, torch.Tensor], gen: torch.Generator
                   ) -> dict[str, torch.Tensor]:
        """One generator update (the critic frozen, called unwrapped: DDP wants gradients for its
        own), then one critic update on the detached transfer images; returns every term
        (detached tensors: nothing here waits for the device).

        inputs: `inputs.assemble_inputs` on the device (and the head boxes when the face loss is
        on); gen: the step's generator (`step_generator_for`), for the penalty's mixing weights.
        """
        w, accel, nets = self.exp.weights, self.accel, self.nets
        images = accel.images
        condition = inputs["ref_cond"]
        set_requires_grad([self.D], False)
        with accel.autocast():
            out = nets["G"](images(inputs["bg_in"]), images(inputs["src_in"]),
                            images(inputs["tsf_in"]), inputs["flow"])
            g_terms = generator_terms(out, inputs, self.critic(self.D, condition), w,
                                      self.perceptual, self.face_net, accel.full_precision)
        self.opt_G.zero_grad(set_to_none=True)
        accel.backward(g_terms["total"])
        accel.step(self.opt_G)
        set_requires_grad([self.D], True)
        with accel.autocast():
            d_terms = discriminator_terms(
                self.critic(nets["D"], condition), inputs["ref"], out["tsf_image"], w, gen,
                penalty_critic=self.critic(uncompiled(nets["D"]), condition),
                full_precision=accel.full_precision, shard=self.shard)
        self.opt_D.zero_grad(set_to_none=True)
        accel.backward(d_terms["d_loss"])
        accel.step(self.opt_D)
        losses = {("g_total" if k == "total" else k): v.detach() for k, v in g_terms.items()}
        losses.update({k: v.detach() for k, v in d_terms.items()})
        return losses


def load_weights(vgg: str | None, face: str | None):
    """The perceptual and face networks of configured weight files (None: not used)."""
    from shapepose.lwgan.losses import VGGPerceptual

    perceptual = VGGPerceptual(vgg) if vgg else None
    face_net = torch.jit.load(face, map_location="cpu").eval() if face else None
    if face_net is not None:
        for p in face_net.parameters():
            p.requires_grad_(False)
    return perceptual, face_net


def train_lwgan(*, data: str, out: str, losses_csv: str, checkpoint_dir: str,
                experiment_name: str, experiment: dict, model: dict, training: dict,
                weights: dict, seed: int, device: str, fast_path: dict | None = None,
                rule: str | None = None) -> dict:
    """The rule's work: train one experiment, export the last checkpoint and the loss history.

    fast_path: the config's `fast_path` section (None: the plain path); rule: the Snakemake rule,
    named in an out-of-memory error."""
    device = pick_device(device)
    exp = section(Experiment, experiment, where=f"lwgan.experiments.{experiment_name}")
    arch = section(Architecture, model, where="lwgan.model")
    train_names, val_names = read_split(data, "train.txt"), read_split(data, "val.txt")
    videos = load_videos(data, train_names, arch.image_size)
    val_videos = load_videos(data, val_names, arch.image_size)
    val_pairs = self_imitation_pairs(val_videos, int(training["val_pairs_per_video"]))
    frames = frame_index(videos)
    batch = int(training["batch_size"])
    epoch_steps = steps_per_epoch(len(frames), batch)
    perceptual, face_net = load_weights(weights["vgg"], weights["face"])
    net = LWGAN(arch, exp, seed, device, perceptual, face_net)
    schedulers = net.lr_schedulers(epoch_steps)
    files = [p for name in train_names + val_names for p in
             (f"{data}/images/{name}", f"{data}/smpls/{name}/pose_shape.pkl")]
    fingerprint = {"architecture": asdict(arch), "experiment": asdict(exp), "training": training,
                   "weights": weights, "data": data_fingerprint(files, root=data)}
    trainer = Trainer(
        checkpoint_dir, fingerprint=fingerprint, modules={"G": net.G, "D": net.D},
        optimizers={"G": net.opt_G, "D": net.opt_D}, lr_schedulers=schedulers, seed=seed,
        stage=STAGE, device=device,
        config=TrainConfig.from_section(training, best_metric="val_masked_l1", best_mode="min"),
        fast_path=fast_path, precisions=PRECISIONS,
        batch_size=("lwgan.training.batch_size", batch), rule=rule)
    part = trainer.shard(batch)
    net.train_through(trainer.accel, trainer.wrap, shard=(batch, part))
    log.info("lwgan %s: %d training frames in %d videos, %d steps of %d (%.1f epochs of %d), "
             "%d validation pairs, perceptual %s, face %s, device %s", experiment_name,
             len(frames), len(videos), training["steps"], batch, training["steps"] / epoch_steps,
             epoch_steps, len(val_pairs), "VGG-19" if perceptual else "L1",
             "on" if face_net is not None and exp.lambda_face > 0 else "off (no weights)", device)

    face = net.uses_face

    def make_batch(step: int) -> dict:
        pairs = draw_pairs(videos, frames, batch, step, seed)[part]
        made = pair_frames(videos, pairs)
        if face:
            made["head_boxes"] = head_boxes(made["ref_cond"])
        return made

    def step_fn(step: int, made: dict) -> dict[str, torch.Tensor | float]:
        inputs = assemble_inputs(made, arch.morphology)
        if face:
            inputs["head_boxes"] = made["head_boxes"]
        lr_g, lr_d = (s.get_last_lr()[0] for s in schedulers.values())
        losses = net.train_step(inputs, step_generator_for(seed, step))
        losses.update(lr_G=lr_g, lr_D=lr_d)
        return losses

    def validate_fn() -> dict[str, float]:
        net.G.eval()
        try:
            with torch.no_grad():
                errors = []
                for i in range(0, len(val_pairs), batch):
                    inputs = pair_inputs(val_videos, val_pairs[i:i + batch], arch.morphology, device)
                    out = net.G(inputs["bg_in"], inputs["src_in"], inputs["tsf_in"], inputs["flow"])
                    errors.append(masked_l1(out["tsf_image"], inputs["ref"], inputs["ref_body"]))
            return {"val_masked_l1": float(torch.cat(errors).mean())}
        finally:
            net.G.train()

    result = trainer.fit(step_fn, validate_fn, batches=make_batch)
    extra = {"experiment": experiment_name, "settings": asdict(exp), "architecture": asdict(arch),
             "perceptual": "VGG-19" if perceptual else "L1",
             "face": "on" if face_net is not None and exp.lambda_face > 0 else "off (no weights)",
             "steps_per_epoch": epoch_steps, "epochs": training["steps"] / epoch_steps,
             "n_train_frames": len(frames),
             "summary": json.loads(json.dumps({"last_metrics": result.last_metrics,
                                               "resumed_from": result.resumed_from}, default=str))}
    trainer.export(out, which="last", extra=extra)
    trainer.write_losses(losses_csv)
    return extra


def step_generator_for(seed: int, step: int) -> torch.Generator:
    """The step's torch generator (the gradient penalty's mixing weights)."""
    return derive_torch_generator(seed, STAGE, "step", int(step), "penalty")


def load_generator(exported: dict, device: torch.device, untrained: bool = False) -> nn.Module:
    """G of a file written by `train_lwgan` (untrained=True: its step-0 weights, rebuilt from
    the recorded seed), in eval mode."""
    extra = exported["meta"]["extra"]
    arch = Architecture(**extra["architecture"])
    exp = Experiment(**extra["settings"])
    if untrained:
        G, _ = initial_networks(arch, exp, int(exported["meta"]["seed"]))
    else:
        G, _ = build_networks(arch, exp)
        G.load_state_dict(exported["G"])
    return G.to(device).eval()

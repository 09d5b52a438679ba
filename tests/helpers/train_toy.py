"""A toy trainer for tests/training/test_training.py, importable and runnable as a subprocess to
be killed.

A small MLP with dropout, Adam and a step learning-rate schedule (stepped by the trainer), fitting
a fixed random linear map. Each step draws its batch from derive_rng(seed, "toy", "batch", step)
and also draws from torch's, numpy's global and python's RNGs, so an exact resume needs every
state the trainer saves.
Run as a script, it writes the step count to --progress after each step so a test knows when
to kill it, then exports the last state to --out. The tests kill the script and resume in their
own process (same code, same thread count for these tiny tensors), which saves torch imports.
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from shapepose.seeding import derive_rng  # noqa: E402
from shapepose.training import TrainConfig, Trainer  # noqa: E402


def toy_config(max_steps: int, **changes) -> TrainConfig:
    """A TrainConfig for the toy: these loop settings unless a test changes them."""
    settings = dict(checkpoint_every=100, validate_every=0, log_every=10, record_every=None,
                    keep_last=2, tensorboard=True)
    settings.update(changes)
    return TrainConfig(max_steps=max_steps, **settings)


class Toy:
    """Model, optimizer, scheduler and the step/validate functions of one toy run."""

    def __init__(self, seed: int, progress: str | None = None, sleep: float = 0.0):
        torch.manual_seed(seed)  # the initial weights; a resumed run overwrites them anyway
        self.seed = seed
        self.net = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Tanh(),
                                       torch.nn.Dropout(0.2), torch.nn.Linear(16, 2))
        self.opt = torch.optim.Adam(self.net.parameters(), lr=0.05)
        self.sched = torch.optim.lr_scheduler.StepLR(self.opt, step_size=4, gamma=0.8)
        data_rng = derive_rng(seed, "toy", "data")
        self.true_map = torch.from_numpy(data_rng.normal(size=(4, 2)).astype(np.float32))
        self.val_x = torch.from_numpy(data_rng.normal(size=(32, 4)).astype(np.float32))
        self.progress = progress
        self.sleep = sleep

    def step_fn(self, step: int) -> dict[str, float]:
        rng = derive_rng(self.seed, "toy", "batch", step)
        x = torch.from_numpy(rng.normal(size=(8, 4)).astype(np.float32))
        # Draws from the global RNGs, whose states only an exact resume gets right.
        jitter = float(np.random.normal()) * 1e-2 + random.random() * 1e-2
        y = x @ self.true_map + jitter + 0.01 * torch.randn(8, 2)
        loss = torch.nn.functional.mse_loss(self.net(x), y)
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        if self.progress:
            Path(self.progress).write_text(str(step + 1))
        if self.sleep:
            time.sleep(self.sleep)
        return {"loss": loss.item()}

    def validate_fn(self) -> dict[str, float]:
        pred = self.net(self.val_x)
        return {"val_mse": torch.nn.functional.mse_loss(pred, self.val_x @ self.true_map).item()}

    def trainer(self, checkpoint_dir, config: TrainConfig, fingerprint: dict | None = None
                ) -> Trainer:
        return Trainer(checkpoint_dir, fingerprint=fingerprint or {"toy": "mlp"}, seed=self.seed,
                       stage="toy", modules={"model": self.net}, optimizers={"adam": self.opt},
                       lr_schedulers={"lr": self.sched}, config=config, device="cpu")


def train_and_export(checkpoint_dir: str, out: str, *, steps: int, checkpoint_every: int,
                     log_every: int, validate_every: int, seed: int = 5,
                     progress: str | None = None, sleep: float = 0.0) -> None:
    """One toy run as a training rule does it: fit (resuming if possible), then export."""
    toy = Toy(seed, progress=progress, sleep=sleep)
    config = toy_config(steps, checkpoint_every=checkpoint_every, log_every=log_every,
                        validate_every=validate_every, best_metric="val_mse", best_mode="min")
    trainer = toy.trainer(checkpoint_dir, config)
    trainer.fit(toy.step_fn, toy.validate_fn)
    trainer.export(out, which="last")


def failing_train(checkpoint_dir: str, fast_path=None, rule=None) -> None:
    """A training function whose data is bad, as the launcher sees it from every rank."""
    from shapepose.errors import InputError

    raise InputError(Path(checkpoint_dir) / "data.h5", "frame 3 has no vertices")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--checkpoint-every", type=int, default=10)
    parser.add_argument("--log-every", type=int, default=3)
    parser.add_argument("--validate-every", type=int, default=7)
    parser.add_argument("--sleep", type=float, default=0.0)
    parser.add_argument("--progress", default=None)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--processes", type=int, default=0,
                        help="run ddp_toy_train in this many processes instead")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    if args.processes:
        from shapepose.training.distributed import launch
        from train_toy import ddp_toy_train as train  # by module name, for spawned workers

        launch(train, dict(checkpoint_dir=args.dir, out=args.out, steps=args.steps,
                                   checkpoint_every=args.checkpoint_every, sleep=args.sleep,
                                   progress=args.progress), processes=args.processes)
        return
    train_and_export(args.dir, args.out, steps=args.steps, checkpoint_every=args.checkpoint_every,
                     log_every=args.log_every, validate_every=args.validate_every,
                     seed=args.seed, progress=args.progress, sleep=args.sleep)



# ------------------------------------------------------------------ the distributed toy

DDP_FEATURES, DDP_OUTPUTS = 4, 2


def ddp_toy_train(checkpoint_dir: str, out: str, *, steps: int, global_batch: int = 8,
                  checkpoint_every: int = 5, seed: int = 7, fast_path: dict | None = None,
                  loader_workers: int = 0, rule: str | None = None, sleep: float = 0.0,
                  progress: str | None = None) -> dict:
    """A deterministic toy for the multi-process tests: no dropout and no global RNG, so several
    processes at the same global batch must reproduce one process's weights.

    The batch of step t is the global batch of derive_rng(seed, "ddp_toy", "batch", t); each
    process trains on its `trainer.shard` of it through `trainer.wrap(net)`. Returns the final
    weights (every rank) as lists, for the test to compare.
    """
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(DDP_FEATURES, 16), torch.nn.Tanh(),
                              torch.nn.Linear(16, DDP_OUTPUTS))
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=4, gamma=0.8)
    true_map = torch.from_numpy(derive_rng(seed, "ddp_toy", "map").normal(
        size=(DDP_FEATURES, DDP_OUTPUTS)).astype(np.float32))
    settings = dict(fast_path or {}, loader_workers=loader_workers)
    config = toy_config(steps, checkpoint_every=checkpoint_every, log_every=3, record_every=1)
    trainer = Trainer(checkpoint_dir, fingerprint={"toy": "ddp"}, seed=seed, stage="ddp_toy",
                      modules={"model": net}, optimizers={"adam": opt},
                      lr_schedulers={"lr": sched}, config=config, device="cpu",
                      fast_path=settings, precisions=("bf16", "fp16"),
                      batch_size=("toy.batch_size", global_batch), rule=rule)
    model = trainer.wrap(net)
    part = trainer.shard(global_batch)

    def make_batch(step: int) -> dict:
        x = derive_rng(seed, "ddp_toy", "batch", step).normal(size=(global_batch, DDP_FEATURES))
        x = x.astype(np.float32)[part]
        return {"x": x, "y": x @ true_map.numpy()}

    def step_fn(step: int, batch: dict) -> dict:
        with trainer.accel.autocast():
            loss = torch.nn.functional.mse_loss(model(batch["x"]).float(), batch["y"])
        opt.zero_grad(set_to_none=True)
        trainer.accel.backward(loss)
        trainer.accel.step(opt)
        if progress and trainer.dist.is_main:
            Path(progress).write_text(str(step + 1))
        if sleep:
            time.sleep(sleep)
        return {"loss": loss.detach()}

    result = trainer.fit(step_fn, batches=make_batch)
    trainer.export(out, which="last")
    trainer.write_losses(str(Path(out).with_suffix(".csv")))
    return {"weights": {k: v.tolist() for k, v in net.state_dict().items()},
            "resumed_from": result.resumed_from, "step": result.step}


if __name__ == "__main__":
    main()

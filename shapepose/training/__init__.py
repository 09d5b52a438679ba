"""The one trainer every training stage uses: resumable, preemption-safe, best-checkpointing.

    seed_everything(seed, "my_stage", "init")
    net = build(...)
    trainer = Trainer(checkpoint_dir, fingerprint=..., modules={"model": net}, seed=seed,
                      stage="my_stage", optimizers={"adam": opt}, lr_schedulers={"lr": sched},
                      config=TrainConfig.from_section(config["my_stage"]["training"]))
    trainer.fit(step_fn, validate_fn)             # step_fn draws from training.batches
    trainer.export(snakemake.output.model, which="best")
    trainer.write_losses(snakemake.output.losses)
"""

from shapepose.training.checkpoint import TrainingError, fingerprint_hash
from shapepose.training.device import pick_device
from shapepose.training.export import load_exported
from shapepose.training.loop import SIGTERM_EXIT_STATUS, FitResult, TrainConfig, Trainer
from shapepose.training.parameters import count_parameters
from shapepose.training.rng import seed_everything

__all__ = ["Trainer", "TrainConfig", "FitResult", "TrainingError", "pick_device", "load_exported",
           "seed_everything", "fingerprint_hash", "SIGTERM_EXIT_STATUS", "count_parameters"]

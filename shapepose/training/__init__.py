"""The one trainer every training stage uses: resumable, preemption-safe, best-checkpointing.

    trainer = Trainer(checkpoint_dir, fingerprint=..., modules={"model": net},
                      optimizers={"adam": opt}, seed=seed, config=TrainConfig(max_steps=300))
    result = trainer.fit(step_fn, validate_fn)
    trainer.export(snakemake.output.model, which="best")
"""

from shapepose.training.checkpoint import TrainingError, fingerprint_hash, seed_everything
from shapepose.training.device import pick_device
from shapepose.training.loop import (
    SIGTERM_EXIT_STATUS, FitResult, TrainConfig, Trainer, load_exported)
from shapepose.training.parameters import count_parameters

__all__ = ["Trainer", "TrainConfig", "FitResult", "TrainingError", "pick_device", "load_exported",
           "seed_everything", "fingerprint_hash", "SIGTERM_EXIT_STATUS", "count_parameters"]

"""Snakemake entry: train Neural Parts with one number of primitives; export the best checkpoint."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the shapepose package

from shapepose.workflow import script_logging

with script_logging(snakemake):
    from shapepose.training.device import configure_torch

    from shapepose.neural_parts.train import train_neural_parts

    configure_torch(snakemake.threads)
    train_neural_parts(
        sequences=list(snakemake.params.sequences),
        surface=list(snakemake.input.surface),
        volume=list(snakemake.input.volume),
        renders=list(snakemake.input.renders),
        out=snakemake.output.model,
        losses_csv=snakemake.output.losses,
        checkpoint_dir=snakemake.params.checkpoint_dir,
        n_primitives=int(snakemake.wildcards.n_primitives),
        seed=snakemake.params.seed,
        device=snakemake.params.device,
        split=dict(snakemake.params.split),
        model=dict(snakemake.params.model),
        losses=dict(snakemake.params.losses),
        training=dict(snakemake.params.training),
    )

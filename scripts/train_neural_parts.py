"""Snakemake entry: train Neural Parts with one number of primitives; export the best checkpoint."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the shapepose package

from shapepose.workflow import script_logging

with script_logging(snakemake):
    from shapepose.training.device import configure_torch
    from shapepose.training.distributed import run_training

    from shapepose.neural_parts.train import train_neural_parts

    configure_torch(snakemake.threads)
    run_training(
        snakemake, train_neural_parts,
        surface=list(snakemake.input.surface),
        volume=list(snakemake.input.volume),
        renders=list(snakemake.input.renders),
        out=snakemake.output.model,
        losses_csv=snakemake.output.losses,
        n_primitives=int(snakemake.wildcards.n_primitives),
        **snakemake.params,
    )

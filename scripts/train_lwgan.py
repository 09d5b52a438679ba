"""Snakemake entry: train one Liquid Warping GAN experiment; export the last checkpoint."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the shapepose package

from shapepose.workflow import script_logging

with script_logging(snakemake):
    import torchvision  # noqa: F401  (before any EGL render in the process, or it segfaults)

    from shapepose.training.device import configure_torch
    from shapepose.training.distributed import run_training

    from shapepose.lwgan.train import train_lwgan

    configure_torch(snakemake.threads)
    run_training(
        snakemake,
        train_lwgan,
        data=snakemake.input.data,
        out=snakemake.output.model,
        losses_csv=snakemake.output.losses,
        experiment_name=snakemake.wildcards.lw_experiment,
        **snakemake.params,
    )

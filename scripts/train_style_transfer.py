"""Snakemake entry: train one style-transfer experiment; export its best checkpoint and losses."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the shapepose package

from shapepose.workflow import script_logging

with script_logging(snakemake):
    from shapepose.training.device import configure_torch
    from shapepose.training.distributed import run_training

    from shapepose.style.train import train_style_transfer

    configure_torch(snakemake.threads)
    run_training(
        snakemake,
        train_style_transfer,
        synthetic=snakemake.input.synthetic,
        real_train=snakemake.input.real,
        out=snakemake.output.model,
        losses_csv=snakemake.output.losses,
        experiment_name=snakemake.wildcards.experiment,
        **snakemake.params,
    )

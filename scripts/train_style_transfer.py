"""Snakemake entry: train one style-transfer experiment; export its best checkpoint and losses."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the shapepose package

from shapepose.workflow import script_logging

with script_logging(snakemake):
    from shapepose.training.device import configure_torch

    from shapepose.style.train import train_style_transfer

    configure_torch(snakemake.threads)
    train_style_transfer(
        synthetic=snakemake.input.synthetic,
        real_train=snakemake.input.real,
        out=snakemake.output.model,
        losses_csv=snakemake.output.losses,
        checkpoint_dir=snakemake.params.checkpoint_dir,
        experiment_name=snakemake.wildcards.experiment,
        experiment=dict(snakemake.params.experiment),
        model=dict(snakemake.params.model),
        training=dict(snakemake.params.training),
        features=snakemake.params.features,
        seed=snakemake.params.seed,
        device=snakemake.params.device,
    )

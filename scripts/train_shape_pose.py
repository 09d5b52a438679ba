"""Snakemake entry: train one shape-and-pose variant; export its best checkpoint and losses."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the shapepose package

from shapepose.workflow import script_logging

with script_logging(snakemake):
    from shapepose.training.device import configure_torch
    from shapepose.training.distributed import run_training

    from shapepose.shape_pose.train import train_shape_pose

    configure_torch(snakemake.threads)
    run_training(
        snakemake, train_shape_pose,
        data=snakemake.input.data,
        out=snakemake.output.model,
        losses_csv=snakemake.output.losses,
        **snakemake.params,
    )

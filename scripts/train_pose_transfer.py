"""Snakemake entry: train one pose-transfer variant; export the best checkpoint by validation PMD."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the shapepose package

from shapepose.workflow import script_logging

with script_logging(snakemake):
    from shapepose.training.device import configure_torch
    from shapepose.training.distributed import run_training

    from shapepose.pose_transfer.train import train_pose_transfer

    configure_torch(snakemake.threads)
    run_training(
        snakemake,
        train_pose_transfer,
        meshes=snakemake.input.meshes,
        val_list=snakemake.input.val,
        out=snakemake.output.model,
        losses_csv=snakemake.output.losses,
        variant=snakemake.wildcards.pt_variant,
        **snakemake.params,
    )

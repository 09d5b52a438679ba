"""Snakemake entry: Pose2Mesh stage 2, the whole model from the trained PoseNet; export the best."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the shapepose package

from shapepose.workflow import script_logging

with script_logging(snakemake):
    from shapepose.training.device import configure_torch
    from shapepose.training.distributed import run_training

    from shapepose.pose2mesh.train import train_meshnet

    configure_torch(snakemake.threads)
    run_training(snakemake, train_meshnet, data=snakemake.input.data,
                 posenet=snakemake.input.posenet, out=snakemake.output.model,
                 losses_csv=snakemake.output.losses, **snakemake.params)

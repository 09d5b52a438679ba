"""Snakemake entry: Pose2Mesh stage 1, PoseNet for one experiment; export the best checkpoint."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the shapepose package

from shapepose.workflow import script_logging

with script_logging(snakemake):
    from shapepose.training.device import configure_torch
    from shapepose.training.distributed import run_training

    from shapepose.pose2mesh.train import train_posenet

    configure_torch(snakemake.threads)
    run_training(snakemake, train_posenet, data=snakemake.input.data,
                 out=snakemake.output.model, losses_csv=snakemake.output.losses,
                 **snakemake.params)

"""Snakemake entry: train the demo Mask R-CNN on photos with known masks; export the best state."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the shapepose package

from shapepose.workflow import script_logging

with script_logging(snakemake):
    from shapepose.training.device import configure_torch
    from shapepose.training.distributed import run_training

    from shapepose.segmentation.train import train_segmenter

    configure_torch(snakemake.threads)
    run_training(snakemake, train_segmenter, train_set=snakemake.input.train_set,
                 out=snakemake.output.model, losses_csv=snakemake.output.losses,
                 **snakemake.params)

"""Snakemake entry: PMD of one pose-transfer model on one test list, with the no-learning answers.

params: test (seen / unseen), replicate, max_tilt_deg, device, seed (the config seed).
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the shapepose package

from shapepose.workflow import script_logging

with script_logging(snakemake):
    from shapepose.training.device import configure_torch

    from shapepose.pose_transfer.evaluate import eval_pose_transfer

    configure_torch(snakemake.threads)
    eval_pose_transfer(
        model_path=snakemake.input.model,
        meshes=snakemake.input.meshes,
        test_list=snakemake.input.test_list,
        out=snakemake.output.metrics,
        predictions=snakemake.output.predictions,
        **snakemake.params,
    )

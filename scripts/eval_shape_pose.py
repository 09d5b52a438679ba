"""Snakemake entry: one variant's model on one test set: Chamfer terms, pose accuracy and median error."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the shapepose package

from shapepose.workflow import script_logging

with script_logging(snakemake):
    from shapepose.training.device import configure_torch

    from shapepose.shape_pose.evaluate import eval_shape_pose

    configure_torch(snakemake.threads)
    eval_shape_pose(
        model=snakemake.input.model,
        align_data=snakemake.input.align_data,
        test_data=snakemake.input.test_data,
        variant=snakemake.wildcards.variant,
        test_set=snakemake.wildcards.test_set,
        out_csv=snakemake.output.csv,
        out_json=snakemake.output.json,
        **snakemake.params,
    )

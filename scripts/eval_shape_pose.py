"""Snakemake entry: one replicate of one variant's model on one test set: Chamfer terms, pose accuracy,
median error."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the shapepose package

from shapepose.workflow import script_logging

with script_logging(snakemake):
    from shapepose.training.device import configure_torch

    from shapepose.shape_pose.evaluate import eval_shape_pose

    configure_torch(snakemake.threads)
    params = dict(snakemake.params.items())
    # the replicate: the rule's `replicate` param (an int), else its {replicate} wildcard's digits
    params.setdefault("replicate", getattr(snakemake.wildcards, "replicate", None))
    eval_shape_pose(
        model=snakemake.input.model,
        align_data=snakemake.input.align_data,
        test_data=snakemake.input.test_data,
        variant=snakemake.wildcards.variant,
        test_set=snakemake.wildcards.test_set,
        out_csv=snakemake.output.csv,
        out_json=snakemake.output.json,
        **params,
    )

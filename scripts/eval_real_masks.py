"""Snakemake entry: one variant's predicted masks against the held-out real cut-outs (XOR disagreement)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the shapepose package

from shapepose.workflow import script_logging

with script_logging(snakemake):
    from shapepose.training.device import configure_torch

    from shapepose.shape_pose.evaluate import eval_real_masks

    configure_torch(snakemake.threads)
    eval_real_masks(
        model=snakemake.input.model,
        cutouts=snakemake.input.cutouts,
        synthetic=snakemake.input.synthetic,
        variant=snakemake.wildcards.variant,
        out_csv=snakemake.output.csv,
        **snakemake.params,
    )

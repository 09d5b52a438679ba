"""Snakemake entry: one replicate of one variant: its predicted masks against the held-out real
cut-outs (XOR disagreement)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the shapepose package

from shapepose.workflow import script_logging

with script_logging(snakemake):
    from shapepose.training.device import configure_torch

    from shapepose.shape_pose.evaluate import eval_real_masks

    configure_torch(snakemake.threads)
    params = dict(snakemake.params.items())
    # the replicate: the rule's `replicate` param (an int), else its {replicate} wildcard's digits
    params.setdefault("replicate", getattr(snakemake.wildcards, "replicate", None))
    eval_real_masks(
        model=snakemake.input.model,
        cutouts=snakemake.input.cutouts,
        synthetic=snakemake.input.synthetic,
        variant=snakemake.wildcards.variant,
        out_csv=snakemake.output.csv,
        **params,
    )

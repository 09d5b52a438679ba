"""Snakemake entry: the PNG grid of held-out pairs (identity, pose, each variant, ground truth)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the shapepose package

from shapepose.workflow import script_logging

with script_logging(snakemake):
    from shapepose.pose_transfer.figure import pose_transfer_grid

    pose_transfer_grid(
        predictions=list(snakemake.input.predictions),
        out=snakemake.output.grid,
        **snakemake.params,
    )

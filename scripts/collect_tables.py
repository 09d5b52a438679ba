"""Snakemake entry: collect every metric table of both branches into results/tables/index.md."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the shapepose package

from shapepose.workflow import script_logging

with script_logging(snakemake):
    from shapepose.tables import collect_tables

    collect_tables(
        neural_parts=snakemake.input.neural_parts,
        segment_filters=snakemake.input.segment_filters,
        frame_ratio=snakemake.input.frame_ratio,
        frame_ratio_plot=snakemake.input.frame_ratio_plot,
        segmentation_quality=snakemake.input.segmentation_quality,
        style_tables=list(snakemake.input.style_tables),
        style_curves=list(snakemake.input.style_curves),
        style_grids=list(snakemake.input.style_grids),
        shape_pose=snakemake.input.shape_pose,
        shape_pose_real=snakemake.input.shape_pose_real,
        shape_pose_plot=snakemake.input.shape_pose_plot,
        index=snakemake.output.index,
        **snakemake.params,
    )

"""Snakemake entry: collect every metric table of both branches into results/tables/index.md."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the shapepose package

from shapepose.workflow import script_logging

with script_logging(snakemake):
    from shapepose.tables import collect_tables

    collect_tables(
        learning=snakemake.input.learning,
        learning_curves=list(snakemake.input.learning_curves),
        neural_parts=snakemake.input.neural_parts,
        segment_filters=snakemake.input.segment_filters[0],
        frame_ratio=snakemake.input.frame_ratio[0],
        frame_ratio_plot=snakemake.input.frame_ratio_plot[0],
        segmentation_quality=snakemake.input.segmentation_quality,
        style_summary=snakemake.input.style_summary,
        style_curves=list(snakemake.input.style_curves),
        style_grids=list(snakemake.input.style_grids),
        shape_pose=snakemake.input.shape_pose,
        shape_pose_real=snakemake.input.shape_pose_real,
        shape_pose_plot=snakemake.input.shape_pose_plot,
        pose_transfer=list(snakemake.input.pose_transfer),
        pose2mesh=list(snakemake.input.pose2mesh),
        lwgan=list(snakemake.input.lwgan),
        index=snakemake.output.index,
        **snakemake.params,
    )

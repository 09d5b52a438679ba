"""Snakemake entry: the Pose2Mesh table, curves, sample figure and checkpoint disk use."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the shapepose package

from shapepose.workflow import script_logging

with script_logging(snakemake):
    from shapepose.pose2mesh.table import tabulate_pose2mesh

    tabulate_pose2mesh(
        evaluation_files=list(snakemake.input.metrics),
        predictions=list(snakemake.input.predictions),
        posenet_losses=list(snakemake.input.posenet_losses),
        meshnet_losses=list(snakemake.input.meshnet_losses),
        csv_out=snakemake.output.csv, md_out=snakemake.output.md,
        replicates_csv=snakemake.output.replicates_csv, disk_csv=snakemake.output.disk_csv,
        curves=snakemake.output.curves, figure=snakemake.output.figure,
        **snakemake.params,
    )

"""Snakemake entry: the PMD table (variants x seen/unseen poses, beside seed 000's numbers)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the shapepose package

from shapepose.workflow import script_logging

with script_logging(snakemake):
    from shapepose.pose_transfer.table import tabulate_pose_transfer

    tabulate_pose_transfer(
        evaluation_files=list(snakemake.input.metrics),
        csv_out=snakemake.output.csv,
        md_out=snakemake.output.md,
        replicates_csv=snakemake.output.replicates_csv,
        comparisons_csv=snakemake.output.comparisons_csv,
        **snakemake.params,
    )

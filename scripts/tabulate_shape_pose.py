"""Snakemake entry: table 6.2 over the replicates (beside the seed's rows), the paired comparisons
of the variants, the per-replicate rows and the real-mask curves."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the shapepose package

from shapepose.workflow import script_logging

with script_logging(snakemake):
    from shapepose.shape_pose.table import tabulate_shape_pose

    tabulate_shape_pose(
        summaries=list(snakemake.input.summaries),
        real_masks=list(snakemake.input.real_masks),
        out_csv=snakemake.output.csv,
        out_per_replicate_csv=snakemake.output.per_replicate_csv,
        out_differences_csv=snakemake.output.differences_csv,
        out_md=snakemake.output.md,
        out_plot=snakemake.output.plot,
        out_real_md=snakemake.output.real_md,
        **snakemake.params,
    )

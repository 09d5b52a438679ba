"""Snakemake entry: filter counts, frame-ratio table and plot, and (demo) segmentation quality."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the shapepose package

from shapepose.workflow import script_logging

with script_logging(snakemake):
    from shapepose.images.tables import tabulate_segments

    tabulate_segments(
        decisions_csv=snakemake.input.decisions,
        synthetic_csv=snakemake.input.synthetic,
        ratios_csv=snakemake.input.ratios,
        out=dict(snakemake.output.items()),
        instances=snakemake.input.instances,
        truth=snakemake.input.truth[0] if snakemake.input.truth else None,
    )

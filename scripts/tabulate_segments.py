"""Snakemake entry: filter counts, frame-ratio table and plot, and (demo) segmentation quality."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the shapepose package

from shapepose.workflow import script_logging

with script_logging(snakemake):
    from shapepose.images.tables import tabulate_segments

    tabulate_segments(
        snakemake.input.decisions,
        snakemake.input.synthetic,
        snakemake.input.ratios,
        out=dict(snakemake.output.items()),
        instances=snakemake.input.instances,
        truth=snakemake.input.truth[0] if snakemake.input.truth else None,
    )

"""Snakemake entry: the thesis filters on every Mask R-CNN instance; accepted RGBA cut-outs."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the shapepose package

from shapepose.workflow import script_logging

with script_logging(snakemake):
    from shapepose.images.filters import filter_segments

    filter_segments(
        instances=snakemake.input.instances,
        photos_root=snakemake.input.photos,
        accepted=snakemake.output.accepted,
        decisions_csv=snakemake.output.decisions,
        **snakemake.params,
    )

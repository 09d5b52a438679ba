"""Snakemake entry: merge the segmentation shards, checking every photo appears exactly once."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the shapepose package

from shapepose.workflow import script_logging

with script_logging(snakemake):
    from shapepose.segmentation.shards import gather_segments

    gather_segments(
        shards=list(snakemake.input.shards),
        photos=snakemake.input.photos,
        out=snakemake.output.instances,
    )

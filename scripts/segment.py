"""Snakemake entry: Mask R-CNN instances of one shard of the photos, as COCO RLE."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the shapepose package

from shapepose.workflow import script_logging

with script_logging(snakemake):
    from shapepose.training.device import configure_torch

    from shapepose.segmentation.shards import segment

    configure_torch(snakemake.threads)
    segment(
        photos=snakemake.input.photos,
        weights=snakemake.input.weights,
        out=snakemake.output.shard,
        shard=snakemake.wildcards.scatteritem,
        **snakemake.params,
    )

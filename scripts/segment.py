"""Snakemake entry: Mask R-CNN instances of one shard of the photos, as COCO RLE."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the shapepose package

from shapepose.workflow import script_logging

with script_logging(snakemake):
    from shapepose.training.device import configure_torch

    from shapepose.segmentation import load_segmenter
    from shapepose.segmentation.shards import segment_shard
    from shapepose.training import pick_device

    configure_torch(snakemake.threads)
    params = snakemake.params
    segmenter = load_segmenter(
        params.backend,
        snakemake.input.weights,
        arch=params.arch,
        detectron2_config=params.detectron2_config,
        score_threshold=params.score_threshold,
        nms_threshold=params.nms_threshold,
        mask_threshold=params.mask_threshold,
        device=pick_device(params.device),
    )
    segment_shard(snakemake.input.photos, snakemake.output.shard,
                  shard=snakemake.wildcards.scatteritem, segmenter=segmenter)

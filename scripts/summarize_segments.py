"""Snakemake entry: segmentation quality and accepted cut-outs over the segmenter's replicates."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the shapepose package

from shapepose.workflow import script_logging

with script_logging(snakemake):
    from shapepose.images.summary import summarize_segments

    summarize_segments(
        quality=list(snakemake.input.quality),
        funnel=list(snakemake.input.funnel),
        replicates=list(snakemake.params.replicates),
        quality_csv=snakemake.output.quality_csv,
        quality_md=snakemake.output.quality_md,
        funnel_csv=snakemake.output.funnel_csv,
        targets=snakemake.params.targets,
    )

"""Snakemake entry: real cut-outs padded square, then to a drawn car-to-frame ratio; 80/20 split."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the shapepose package

from shapepose.workflow import script_logging

with script_logging(snakemake):
    from shapepose.images.frame_ratio import normalize_segments

    normalize_segments(
        cutouts=snakemake.input.cutouts,
        fitted=snakemake.input.fit,
        train_dir=snakemake.output.train,
        test_dir=snakemake.output.test,
        ratios_csv=snakemake.output.ratios,
        **snakemake.params,
    )

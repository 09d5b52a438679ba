"""Snakemake entry: a Normal fitted to the synthetic train views' car-to-frame ratios."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the shapepose package

from shapepose.workflow import script_logging

with script_logging(snakemake):
    from shapepose.images.dpc import read_dpc
    from shapepose.images.frame_ratio import fit_frame_ratio

    fit_frame_ratio(
        read_dpc(snakemake.input.synthetic),
        summary=snakemake.output.fit,
        table=snakemake.output.ratios,
        **snakemake.params,
    )

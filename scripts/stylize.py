"""Snakemake entry: every synthetic render through one experiment's G, in the synthetic layout."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the shapepose package

from shapepose.workflow import script_logging

with script_logging(snakemake):
    from shapepose.training.device import configure_torch

    from shapepose.style.stylize import stylize

    configure_torch(snakemake.threads)
    stylize(
        model=snakemake.input.model,
        synthetic=snakemake.input.synthetic,
        out=snakemake.output.data,
        alpha_csv=snakemake.output.alpha,
        **snakemake.params,
    )

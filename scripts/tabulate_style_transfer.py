"""Snakemake entry: the style-transfer experiments over their replicates, and against each other."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the shapepose package

from shapepose.workflow import script_logging

with script_logging(snakemake):
    from shapepose.style.summary import tabulate_style_transfer

    tabulate_style_transfer(
        tables=list(snakemake.input.tables),
        experiments=list(snakemake.params.experiments),
        replicates=list(snakemake.params.replicates),
        csv=snakemake.output.csv,
        md=snakemake.output.md,
        comparison_csv=snakemake.output.comparison_csv,
    )

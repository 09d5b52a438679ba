"""Snakemake entry: seed 004's table 1 beside ours, the self-imitation table and loss curves."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the shapepose package

from shapepose.workflow import script_logging

with script_logging(snakemake):
    from shapepose.lwgan.table import tabulate_lwgan

    tabulate_lwgan(
        metrics=list(snakemake.input.metrics),
        losses=list(snakemake.input.losses),
        **{key: value for key, value in snakemake.output.items()},
        **snakemake.params,
    )

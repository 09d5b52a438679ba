"""Snakemake entry: one style-transfer experiment's loss curves, sample grid and loss table."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the shapepose package

from shapepose.workflow import script_logging

with script_logging(snakemake):
    from shapepose.style.report import report_style_transfer

    report_style_transfer(
        model=snakemake.input.model,
        losses=snakemake.input.losses,
        alpha=snakemake.input.alpha,
        synthetic=snakemake.input.synthetic,
        real_test=snakemake.input.real_test,
        curves_png=snakemake.output.curves,
        grid_png=snakemake.output.grid,
        table_csv=snakemake.output.table_csv,
        table_md=snakemake.output.table_md,
        **snakemake.params,
    )

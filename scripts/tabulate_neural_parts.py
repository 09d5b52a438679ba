"""Snakemake entry: the Neural Parts table (IoU, Chamfer-L1 per number of primitives, over the
replicates, trained and untrained) as CSV and Markdown, with the per-replicate rows and the
comparisons as CSV.

input: metrics (every eval.json: each P x replicate x trained/untrained); output: csv, md,
replicates_csv, comparisons_csv; params: dataset.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the shapepose package

from shapepose.workflow import script_logging

with script_logging(snakemake):
    from shapepose.neural_parts.table import tabulate_neural_parts

    tabulate_neural_parts(
        evaluation_files=list(snakemake.input.metrics),
        csv_out=snakemake.output.csv,
        md_out=snakemake.output.md,
        replicates_csv=snakemake.output.replicates_csv,
        comparisons_csv=snakemake.output.comparisons_csv,
        **snakemake.params,
    )

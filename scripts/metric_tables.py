"""Snakemake entry: collect every metric table of both branches into results/tables/index.md."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the shapepose package

from shapepose.workflow import script_logging

with script_logging(snakemake):
    from shapepose.tables import collect_tables

    inp, params = snakemake.input, snakemake.params
    collect_tables(
        {
            f"Neural Parts on {params.mesh_dataset} (seed 003)": [inp.neural_parts],
            f"Car photos {params.cars_dataset}: segmentation filters (seed 002, 3.1-3.3)": [
                inp.segment_filters],
            f"Car photos {params.cars_dataset}: frame ratio (seed 002, 3.2.1)": [
                inp.frame_ratio, inp.frame_ratio_plot],
            f"Car photos {params.cars_dataset}: segmentation quality": [inp.segmentation_quality],
        },
        snakemake.output.index,
        title="shapepose metric tables",
    )

"""Snakemake entry: collect every metric table of both branches into results/tables/index.md."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the shapepose package

from shapepose.workflow import script_logging

with script_logging(snakemake):
    from shapepose.tables import collect_tables

    inp, params = snakemake.input, snakemake.params
    style = {
        f"Car photos {params.cars_dataset}: style transfer '{name}' (seed 002 chapter 4)": [
            table, curves, grid]
        for name, table, curves, grid in zip(params.style_experiments, inp.style_tables,
                                             inp.style_curves, inp.style_grids)
    }
    collect_tables(
        {
            f"Neural Parts on {params.mesh_dataset} (seed 003)": [inp.neural_parts],
            f"Car photos {params.cars_dataset}: segmentation filters (seed 002, 3.1-3.3)": [
                inp.segment_filters],
            f"Car photos {params.cars_dataset}: frame ratio (seed 002, 3.2.1)": [
                inp.frame_ratio, inp.frame_ratio_plot],
            f"Car photos {params.cars_dataset}: segmentation quality": [inp.segmentation_quality],
            **style,
            f"Car photos {params.cars_dataset}: shape and pose (seed 002 table 6.2)": [
                inp.shape_pose],
            f"Car photos {params.cars_dataset}: shape and pose on real cut-outs (seed 002 figures "
            "6.5, 7.1)": [inp.shape_pose_real, inp.shape_pose_plot],
        },
        snakemake.output.index,
        title="shapepose metric tables",
    )

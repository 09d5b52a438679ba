"""Snakemake entry: procedural cars as DPC-layout renders, Stanford-layout photos and their truth."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the shapepose package

from shapepose.workflow import script_logging

with script_logging(snakemake):
    from shapepose.cars.demo import make_demo_cars

    make_demo_cars(
        snakemake.output.synthetic,
        snakemake.output.photos,
        snakemake.output.photos_truth,
        snakemake.output.segmenter_train,
        seed=snakemake.params.seed,
        synthetic_options=dict(snakemake.params.synthetic),
        photo_options=dict(snakemake.params.photos),
        shape=dict(snakemake.params.shape),
    )

"""Snakemake entry: procedural cars as DPC-layout renders, Stanford-layout photos and their truth."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the shapepose package

from shapepose.workflow import script_logging

with script_logging(snakemake):
    from shapepose.cars.demo import make_demo_cars

    make_demo_cars(
        synthetic=snakemake.output.synthetic,
        photos=snakemake.output.photos,
        photos_truth=snakemake.output.photos_truth,
        segmenter_train=snakemake.output.segmenter_train,
        **snakemake.params,
    )

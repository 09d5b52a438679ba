"""Snakemake entry: the demo Human3.6M annotation layout from the coarse demo body."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the shapepose package

from shapepose.workflow import script_logging

with script_logging(snakemake):
    from shapepose.pose2mesh.demo import make_demo_h36m

    make_demo_h36m(out=snakemake.output.data, **snakemake.params)

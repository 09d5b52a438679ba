"""Snakemake entry: one procedural subject performing one motion, as a DFAUST-layout file."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the shapepose package

from shapepose.workflow import script_logging

with script_logging(snakemake):
    from shapepose.bodies.demo import make_demo_sequence

    make_demo_sequence(
        registrations=snakemake.output.registrations,
        joints=snakemake.output.joints,
        sequence=snakemake.wildcards.sequence,
        **snakemake.params,
    )

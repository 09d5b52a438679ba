"""Snakemake entry: the demo sequences assembled into DFAUST's registrations_{m,f}.hdf5."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the shapepose package

from shapepose.workflow import script_logging

with script_logging(snakemake):
    from shapepose.bodies.demo import assemble_demo_bodies

    assemble_demo_bodies(
        list(zip(snakemake.input.registrations, snakemake.input.joints)),
        snakemake.output.m,
        snakemake.output.f,
        snakemake.output.joints,
    )

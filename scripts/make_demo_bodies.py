"""Snakemake entry: the demo sequences assembled into DFAUST's registrations_{m,f}.hdf5."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the shapepose package

from shapepose.workflow import script_logging

with script_logging(snakemake):
    from shapepose.bodies.demo import make_demo_bodies

    make_demo_bodies(
        registrations=list(snakemake.input.registrations),
        joints=list(snakemake.input.joints),
        out_m=snakemake.output.m,
        out_f=snakemake.output.f,
        out_joints=snakemake.output.joints,
    )

"""Snakemake entry: the demo pose-transfer set (coarse demo bodies as OBJ, test lists)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the shapepose package

from shapepose.workflow import script_logging

with script_logging(snakemake):
    from shapepose.pose_transfer.demo import make_demo_pose_pairs

    make_demo_pose_pairs(
        meshes=snakemake.output.meshes,
        val_list=snakemake.output.val,
        seen_list=snakemake.output.seen,
        unseen_list=snakemake.output.unseen,
        **snakemake.params,
    )

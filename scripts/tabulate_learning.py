"""Snakemake entry: the learning table (results/tables/learning.{csv,md}) and each stage's curves."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the shapepose package

from shapepose.workflow import script_logging

with script_logging(snakemake):
    from shapepose.learning import tabulate_learning

    params = snakemake.params
    losses = {
        "shape_pose": snakemake.input.losses_shape_pose,
        "neural_parts": snakemake.input.losses_neural_parts,
        "segmentation": snakemake.input.losses_segmentation,
        "style_transfer": snakemake.input.losses_style,
        "pose_transfer": snakemake.input.losses_pose_transfer,
        "pose2mesh": snakemake.input.losses_pose2mesh,
        "lwgan": snakemake.input.losses_lwgan,
    }
    summaries = {stage: {"files": list(snakemake.input[f"summary_{stage}"]),
                         "groups": list(groups)}
                 for stage, groups in params.summary_groups.items()}
    curves = {
        stage: {"files": list(losses[stage]),
                "groups": [group for group, _ in params.curve_groups[stage]],
                "replicates": [int(r) for _, r in params.curve_groups[stage]]}
        for stage in params.stages
    }
    tabulate_learning(
        shape_pose=list(snakemake.input.shape_pose),
        shape_pose_variants=list(params.shape_pose_variants),
        neural_parts=list(snakemake.input.neural_parts),
        neural_parts_counts=list(params.neural_parts_counts),
        neural_parts_weights=list(params.neural_parts_weights),
        segmentation=list(snakemake.input.segmentation),
        style=list(snakemake.input.style),
        style_experiment=params.style_experiment,
        curves=curves,
        targets=params.targets,
        out_csv=snakemake.output.csv,
        out_md=snakemake.output.md,
        out_curves={stage: snakemake.output[f"curve_{stage}"] for stage in params.stages},
        scale=params.scale,
        summaries=summaries,
    )

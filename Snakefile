# shapepose: raw 3D meshes and photographs to shape-and-pose models and the tables comparing them.
from snakemake.utils import min_version, validate

min_version("9.0")


configfile: f"{workflow.basedir}/config.yaml"


validate(config, schema="workflow/schemas/config.schema.yaml")


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/meshes.smk"
include: "workflow/rules/sampling.smk"
include: "workflow/rules/render.smk"
include: "workflow/rules/cars.smk"
include: "workflow/rules/segment.smk"
include: "workflow/rules/cutouts.smk"
include: "workflow/rules/style_transfer.smk"
include: "workflow/rules/neural_parts.smk"
include: "workflow/rules/shape_pose.smk"
include: "workflow/rules/pose_transfer.smk"
include: "workflow/rules/lwgan.smk"
include: "workflow/rules/pose2mesh.smk"
include: "workflow/rules/tables.smk"


rule all:
    input:
        all_mesh_branch_outputs(),
        image_branch_outputs(),
        style_transfer_outputs(),
        shape_pose_outputs(),
        neural_parts_outputs(),
        pose_transfer_outputs(),
        lwgan_outputs(),
        pose2mesh_outputs(),
        rules.collect_tables.output,
    default_target: True


# One branch at a time, e.g. `snakemake --cores 2 mesh_branch`.
rule mesh_branch:
    input:
        all_mesh_branch_outputs(),


rule image_branch:
    input:
        image_branch_outputs(),
        style_transfer_outputs(),
        shape_pose_outputs(),


rule neural_parts:
    input:
        neural_parts_outputs(),


rule pose_transfer:
    input:
        pose_transfer_outputs(),


rule pose2mesh:
    input:
        pose2mesh_outputs(),


rule lwgan:
    input:
        lwgan_outputs(),

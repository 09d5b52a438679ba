# Pose transfer (seed 000): its config, paths, wildcard constraints and input functions, kept
# apart from its rules (pose_transfer.smk includes this file) so that each file is either rules
# or helpers, as `snakemake --lint` asks.

PT = config["pose_transfer"]
PT_DATASET = PT["dataset"]
PT_DEMO = PT["data"] == "demo"
PT_VARIANTS = list(PT["variants"])
PT_TESTS = ["seen", "unseen"]
PT_DIR = f"results/pose_transfer/{PT_DATASET}/{{pt_variant}}/r{{replicate}}"
PT_DEMO_DIR = f"results/demo_pose_pairs/{PT_DATASET}"
PT_CONSTRAINTS = {"pt_variant": one_of(PT_VARIANTS), "pt_test": one_of(PT_TESTS)}


def pose_transfer_settings(wildcards):
    """One variant's full settings: pose_transfer.defaults with the variant's own on top.

    A param per variant, so changing one variant's setting reruns that variant only.
    """
    return {**PT["defaults"], **(PT["variants"][wildcards.pt_variant] or {})}


def pose_transfer_split():
    """The training identities and poses: the demo's first ones, or the configured ranges."""
    if PT_DEMO:
        demo = PT["demo"]
        return list(range(demo["identities"]["train"])), list(range(demo["seen_poses"]))
    data = PT["data"]
    return list(range(*data["train_identities"])), list(range(*data["train_poses"]))


def pose_transfer_file(key):
    """The meshes folder ("meshes") or a list ("val", "seen", "unseen"): the demo's or the config's."""
    if PT_DEMO:
        return getattr(rules.make_demo_pose_pairs.output, key)
    return PT["data"][key]


def pose_transfer_test_list(wildcards):
    return pose_transfer_file(wildcards.pt_test)


def pose_transfer_outputs():
    """Everything the pose-transfer stage produces that `rule all` asks for."""
    return list(rules.tabulate_pose_transfer.output) + list(rules.draw_pose_transfer_grid.output)

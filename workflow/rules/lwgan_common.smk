# The Liquid Warping GAN stage's settings and input functions (rules in lwgan.smk).

LWGAN = config["lwgan"]
LWGAN_EXPERIMENTS = list(LWGAN["run"] or LWGAN["experiments"])  # the ones this run trains
LWGAN_DEMO = LWGAN["data"] == "demo"
LWGAN_TABLES = "results/tables/lwgan"
LWGAN_DIR = "results/lwgan/{lw_experiment}/r{replicate}"


def lwgan_experiment(wildcards):
    """One experiment's full settings: lwgan.defaults with the experiment's own on top.

    A param per experiment, so changing one experiment's setting reruns that experiment only.
    """
    return {**LWGAN["defaults"], **(LWGAN["experiments"][wildcards.lw_experiment] or {})}


def lwgan_data():
    """The iPER folder: the demo rule's output, or the configured download."""
    return rules.make_demo_iper.output.data if LWGAN_DEMO else LWGAN["data"]


def lwgan_outputs():
    """Everything the Liquid Warping GAN stage produces that `rule all` asks for."""
    return list(rules.tabulate_lwgan.output) + expand(
        [rules.eval_lwgan.output.strip, rules.eval_lwgan.output.animation],
        lw_experiment=LWGAN_EXPERIMENTS, replicate=REPLICATES)

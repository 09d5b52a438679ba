# Pose2Mesh's helpers: its config, paths, per-experiment settings and what `all` asks for.

P2M = config["pose2mesh"]
P2M_DATASET = P2M["dataset"]
P2M_DEMO = P2M["data"] == "demo"
P2M_EXPERIMENTS = list(P2M["run"] or P2M["experiments"])
P2M_DIR = f"results/pose2mesh/{P2M_DATASET}/{{p2m_experiment}}/r{{replicate}}"
P2M_CHECKPOINTS = f"results/checkpoints/pose2mesh/{P2M_DATASET}/{{p2m_experiment}}/r{{replicate}}"
P2M_TABLES = f"results/tables/{P2M_DATASET}"


def _check_p2m_run():
    unknown = [e for e in P2M_EXPERIMENTS if e not in P2M["experiments"]]
    if unknown:
        raise ValueError(f"config: pose2mesh.run: {unknown} are not among pose2mesh.experiments")


_check_p2m_run()


def p2m_data():
    """The Human3.6M folder: made by make_demo_h36m, or the config's download."""
    if P2M_DEMO:
        return rules.make_demo_h36m.output.data
    return P2M["data"]


def p2m_experiment(wildcards):
    """One experiment's full settings: pose2mesh.defaults with its own on top (a param per
    experiment, so changing one experiment's setting reruns that experiment only)."""
    return {**P2M["defaults"], **(P2M["experiments"][wildcards.p2m_experiment] or {})}


def p2m_posenet_experiment(wildcards):
    """What of the experiment PoseNet's training depends on (not the mesh graph's rescaling)."""
    settings = p2m_experiment(wildcards)
    return {k: settings[k] for k in ("optimizer", "lr")}


def p2m_runs(pattern):
    """`pattern` for every experiment and replicate, experiments varying slowest."""
    return expand(pattern, p2m_experiment=P2M_EXPERIMENTS, replicate=REPLICATES)


def pose2mesh_outputs():
    return list(rules.tabulate_pose2mesh.output)

# Per sequence: surface points with normals, and importance-weighted labelled volume points.


rule sample_surface:
    input:
        meshes=rules.extract_meshes.output.meshes,
    output:
        samples=f"results/samples/{DATASET}/surface/{{sequence}}.h5",
    params:
        n_points=config["surface"]["n_points"],
        seed=config["seed"],
    threads: 1
    resources:
        # frames are sampled and written one at a time: about 110 MB peak at 100k points
        mem_mb=memory_mb(1000),
        runtime=30,  # minutes; about 0.2 s per frame at 100k points, ~1000 frames at most
    log:
        f"logs/sample_surface/{DATASET}/{{sequence}}.log",
    benchmark:
        f"benchmarks/sample_surface/{DATASET}/{{sequence}}.tsv"
    conda:
        "../../envs/sampling.yaml"
    script:
        "../../scripts/sample_surface.py"


rule sample_volume:
    input:
        meshes=rules.extract_meshes.output.meshes,
    output:
        samples=f"results/samples/{DATASET}/volume/{{sequence}}.h5",
    params:
        n_points=config["volume"]["n_points"],
        cuboid=config["volume"]["cuboid"],
        center=config["volume"]["center"],
        cell_size=config["volume"]["cell_size"],
        strata=config["volume"]["strata"],
        seed=config["seed"],
    threads: 1
    resources:
        # one frame at a time: about 105 MB peak at 100k points with the winding-number labels
        mem_mb=memory_mb(1000),
        runtime=30,  # minutes; about 0.25 s per frame at 100k points
    log:
        f"logs/sample_volume/{DATASET}/{{sequence}}.log",
    benchmark:
        f"benchmarks/sample_volume/{DATASET}/{{sequence}}.tsv"
    conda:
        "../../envs/sampling.yaml"
    script:
        "../../scripts/sample_volume.py"

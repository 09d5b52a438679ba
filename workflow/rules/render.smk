# Per sequence: one RGBA image per frame from a camera fixed in the world (seed 003).


rule render_meshes:
    input:
        meshes=rules.extract_meshes.output.meshes,
    output:
        renders=directory(f"results/renders/{DATASET}/{{sequence}}"),
    params:
        size=config["render"]["size"],
        camera=config["render"]["camera"],
    threads: 1
    resources:
        # headless EGL (software rasterizer where the node has no GPU): about 170 MB peak
        mem_mb=memory_mb(1000),
        runtime=30,  # minutes; about 40 frames per second at 224 x 224
    log:
        f"logs/render_meshes/{DATASET}/{{sequence}}.log",
    benchmark:
        f"benchmarks/render_meshes/{DATASET}/{{sequence}}.tsv"
    conda:
        "../../envs/render.yaml"
    script:
        "../../scripts/render_meshes.py"

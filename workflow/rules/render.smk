# Per sequence: one RGBA image per frame from a camera fixed in the world (seed 003).


rule render_meshes:
    input:
        meshes=rules.extract_meshes.output.meshes,
    output:
        renders=directory(f"results/renders/{DATASET}/{{sequence}}"),
    params:
        size=config["render"]["size"],
        camera=config["render"]["camera"],
    log:
        f"logs/render_meshes/{DATASET}/{{sequence}}.log",
    benchmark:
        f"benchmarks/render_meshes/{DATASET}/{{sequence}}.tsv"
    conda:
        "../../envs/render.yaml"
    script:
        "../../scripts/render_meshes.py"

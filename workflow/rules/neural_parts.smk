# Neural Parts (seed 003) trained on the surface and weighted volume samples, per primitive count.


rule train_neural_parts:
    input:
        **neural_parts_inputs("train"),
    output:
        model=f"{NEURAL_PARTS_DIR}/model.pt",
        losses=f"{NEURAL_PARTS_DIR}/losses.csv",
    params:
        sequences=NEURAL_PARTS_SEQUENCES["train"],
        # not an output: Snakemake would delete it on failure, and resuming needs it
        checkpoint_dir=f"results/checkpoints/neural_parts/{DATASET}/P{{n_primitives}}/r{{replicate}}",
        split=NEURAL_PARTS["split"],
        model=NEURAL_PARTS["model"],
        losses=NEURAL_PARTS["losses"],
        training=NEURAL_PARTS["training"],
        device=NEURAL_PARTS["device"],
        seed=training_seed("neural_parts"),
    # One thread: two torch threads on two busy cores spin-wait on each other (several times
    # slower per step); give a GPU or more threads (--set-threads) where the node has them.
    threads: 1
    resources:
        mem_mb=memory_mb(4000),
        runtime=600,  # minutes; the demo default takes about 1 on one CPU core
        gpu=1,
        nodes=1,  # several GPUs on one node: --set-resources train_neural_parts:gpu=N runs DDP
        # GPU memory the real config needs, estimated from the CPU peak, not measured on a GPU (none
        # was available): one fp32 step at dfaust.yaml's sizes (224 px, width 256, 10 primitives, 2
        # frames of 2000 + 5000 points) peaked at 2.7 GB resident on the CPU, 0.9 GB of it the
        # imports (benchmarks/train_step.py --size real, 2026-12-07).
        gpu_mem_mb=3000,  # estimated
    log:
        f"logs/train_neural_parts/{DATASET}/P{{n_primitives}}/r{{replicate}}.log",
    benchmark:
        f"benchmarks/train_neural_parts/{DATASET}/P{{n_primitives}}/r{{replicate}}.tsv"
    conda:
        "../../envs/neural_parts.yaml"
    script:
        "../../scripts/train_neural_parts.py"


rule eval_neural_parts:
    input:
        model=rules.train_neural_parts.output.model,
        **neural_parts_inputs("test"),
    output:
        metrics=f"{NEURAL_PARTS_DIR}/eval_{{weights}}.json",
    params:
        sequences=NEURAL_PARTS_SEQUENCES["test"],
        split=NEURAL_PARTS["split"],
        image_size=NEURAL_PARTS["model"]["image_size"],
        subdivisions=NEURAL_PARTS["sphere_subdivisions"],
        n_points=NEURAL_PARTS["eval"]["n_points"],
        max_frames=NEURAL_PARTS["eval"]["max_frames"],
        untrained=lambda wildcards: wildcards.weights == "untrained",
        replicate=replicate_number,
        device=NEURAL_PARTS["device"],
        seed=config["seed"],
    threads: 1
    resources:
        mem_mb=memory_mb(4000),  # 985 MB measured (demo, 5000 points)
        runtime=120,  # minutes; 11 s measured for the demo's test frames on one CPU core
        gpu=1,  # the network runs on the device for every test frame (`device: auto`)
    log:
        f"logs/eval_neural_parts/{DATASET}/P{{n_primitives}}/r{{replicate}}/{{weights}}.log",
    benchmark:
        f"benchmarks/eval_neural_parts/{DATASET}/P{{n_primitives}}/r{{replicate}}/{{weights}}.tsv"
    conda:
        "../../envs/neural_parts.yaml"
    script:
        "../../scripts/eval_neural_parts.py"


rule export_neural_parts:
    input:
        model=rules.train_neural_parts.output.model,
        **neural_parts_inputs("test"),
    output:
        primitives=directory(f"{NEURAL_PARTS_DIR}/primitives"),
        views=report(
            directory(f"{NEURAL_PARTS_DIR}/views"),
            patterns=["{stem}.png"],
            caption="../report/neural_parts_views.rst",
            category="Neural Parts",
            subcategory="{n_primitives} primitives, replicate {replicate}",
            labels={"primitives": "{n_primitives}", "replicate": "{replicate}", "frame": "{stem}"},
        ),
    params:
        sequences=NEURAL_PARTS_SEQUENCES["test"],
        split=NEURAL_PARTS["split"],
        image_size=NEURAL_PARTS["model"]["image_size"],
        subdivisions=NEURAL_PARTS["sphere_subdivisions"],
        n_frames=NEURAL_PARTS["export"]["n_frames"],
        render_size=config["render"]["size"],
        camera=config["render"]["camera"],
        device=NEURAL_PARTS["device"],
    # The network on a few frames takes seconds on a CPU: no gpu asked, `device: auto` takes the CPU
    threads: 1
    resources:
        mem_mb=memory_mb(3000),  # 918 MB measured (demo)
        runtime=30,  # minutes; 4.3 s measured
    log:
        f"logs/export_neural_parts/{DATASET}/P{{n_primitives}}/r{{replicate}}.log",
    benchmark:
        f"benchmarks/export_neural_parts/{DATASET}/P{{n_primitives}}/r{{replicate}}.tsv"
    conda:
        "../../envs/neural_parts.yaml"
    script:
        "../../scripts/export_neural_parts.py"


rule tabulate_neural_parts:
    input:
        metrics=expand(
            rules.eval_neural_parts.output.metrics,
            n_primitives=NEURAL_PARTS["primitives"],
            replicate=REPLICATES,
            weights=["trained", "untrained"],
        ),
    output:
        csv=report(
            f"results/tables/{DATASET}/neural_parts.csv",
            caption="../report/neural_parts_table.rst",
            category="Neural Parts",
            labels={"table": "IoU and Chamfer-L1 per number of primitives"},
        ),
        md=f"results/tables/{DATASET}/neural_parts.md",
        replicates_csv=f"results/tables/{DATASET}/neural_parts_replicates.csv",
        comparisons_csv=f"results/tables/{DATASET}/neural_parts_comparisons.csv",
    params:
        dataset=DATASET,
    # A table from a few small JSON files: 0.3 s measured; memory is the Python interpreter's.
    threads: 1
    resources:
        mem_mb=memory_mb(500),
        runtime=10,
    log:
        f"logs/tabulate_neural_parts/{DATASET}.log",
    benchmark:
        f"benchmarks/tabulate_neural_parts/{DATASET}.tsv"
    conda:
        "../../envs/neural_parts.yaml"
    script:
        "../../scripts/tabulate_neural_parts.py"

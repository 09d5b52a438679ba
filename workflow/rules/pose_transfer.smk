# Neural pose transfer with SPAdaIN (seed 000): demo pairs, one model per variant, PMD, the grid.
# Variants come from pose_transfer.variants (overrides of pose_transfer.defaults, as the style
# experiments); the wildcard is `pt_variant` (its constraint is per rule: `variant` belongs to
# shape and pose), and `pt_test` is the test list (seen or unseen poses).

include: "pose_transfer_common.smk"


rule make_demo_pose_pairs:
    output:
        meshes=directory(f"{PT_DEMO_DIR}/meshes"),
        val=f"{PT_DEMO_DIR}/val.txt",
        seen=f"{PT_DEMO_DIR}/test_seen.txt",
        unseen=f"{PT_DEMO_DIR}/test_unseen.txt",
    params:
        seed=config["seed"],
        **PT["demo"],
    # 368 coarse meshes posed and written as OBJ: 4.4 CPU-s measured, 170 MB
    threads: 1
    resources:
        mem_mb=memory_mb(1000),
        runtime=10,
    log:
        f"logs/make_demo_pose_pairs/{PT_DATASET}.log",
    benchmark:
        f"benchmarks/make_demo_pose_pairs/{PT_DATASET}.tsv"
    conda:
        "../../envs/pose_transfer.yaml"
    script:
        "../../scripts/make_demo_pose_pairs.py"


rule train_pose_transfer:
    input:
        meshes=pose_transfer_file("meshes"),
        val=pose_transfer_file("val"),
    output:
        model=f"{PT_DIR}/model.pt",
        losses=f"{PT_DIR}/losses.csv",
    params:
        # not an output: Snakemake would delete it on failure, and resuming needs it
        checkpoint_dir=f"results/checkpoints/pose_transfer/{PT_DATASET}/{{pt_variant}}/r{{replicate}}",
        settings=pose_transfer_settings,
        train_identities=pose_transfer_split()[0],
        train_poses=pose_transfer_split()[1],
        max_tilt_deg=PT["max_tilt_deg"],
        training=PT["training"],
        device=PT["device"],
        seed=training_seed("pose_transfer"),
    wildcard_constraints:
        **PT_CONSTRAINTS,
    # One thread (see train_neural_parts). Measured on the demo (752 vertices, width 64, batch 8):
    # 0.045 s per step alone on one core, 24-35 CPU-s per job, at most 790 MB resident; the
    # authors' 6890 vertices at width 1024 need a GPU.
    threads: 1
    resources:
        mem_mb=memory_mb(3000),
        runtime=600,  # minutes; the demo default takes well under 1 on one CPU core
        gpu=1,
        nodes=1,  # several GPUs on one node: --set-resources train_pose_transfer:gpu=N runs DDP
        # GPU memory the real config needs, estimated from the CPU peak, not measured on a GPU (none
        # was available): one fp32 step at npt.yaml's sizes (width 1024, batch 8, a 6746-vertex
        # stand-in for SMPL) peaked at 6.2 GB resident on the CPU (benchmarks/train_step.py --size
        # real, 2026-12-07).
        gpu_mem_mb=7000,  # estimated
    log:
        f"logs/train_pose_transfer/{PT_DATASET}/{{pt_variant}}/r{{replicate}}.log",
    benchmark:
        f"benchmarks/train_pose_transfer/{PT_DATASET}/{{pt_variant}}/r{{replicate}}.tsv"
    conda:
        "../../envs/pose_transfer.yaml"
    script:
        "../../scripts/train_pose_transfer.py"


rule eval_pose_transfer:
    input:
        model=rules.train_pose_transfer.output.model,
        meshes=pose_transfer_file("meshes"),
        test_list=pose_transfer_test_list,
    output:
        metrics=f"{PT_DIR}/eval_{{pt_test}}.json",
        predictions=f"{PT_DIR}/predictions_{{pt_test}}.npz",
    params:
        test=lambda wildcards: wildcards.pt_test,
        replicate=replicate_number,
        max_tilt_deg=PT["max_tilt_deg"],
        device=PT["device"],
        seed=config["seed"],
    wildcard_constraints:
        **PT_CONSTRAINTS,
    # The trained and the step-0 network on 24 demo triples: 6-7 CPU-s (mostly imports), 730 MB
    threads: 1
    resources:
        mem_mb=memory_mb(3000),
        runtime=60,
        gpu=1,
    log:
        f"logs/eval_pose_transfer/{PT_DATASET}/{{pt_variant}}/r{{replicate}}/{{pt_test}}.log",
    benchmark:
        f"benchmarks/eval_pose_transfer/{PT_DATASET}/{{pt_variant}}/r{{replicate}}/{{pt_test}}.tsv"
    conda:
        "../../envs/pose_transfer.yaml"
    script:
        "../../scripts/eval_pose_transfer.py"


rule tabulate_pose_transfer:
    input:
        metrics=expand(
            rules.eval_pose_transfer.output.metrics,
            pt_variant=PT_VARIANTS,
            replicate=REPLICATES,
            pt_test=PT_TESTS,
        ),
    output:
        csv=report(
            f"results/tables/{PT_DATASET}/pose_transfer.csv",
            caption="../report/pose_transfer_table.rst",
            category="Pose transfer",
            labels={"table": "PMD per variant, seen and unseen poses"},
        ),
        md=f"results/tables/{PT_DATASET}/pose_transfer.md",
        replicates_csv=f"results/tables/{PT_DATASET}/pose_transfer_replicates.csv",
        comparisons_csv=f"results/tables/{PT_DATASET}/pose_transfer_comparisons.csv",
    params:
        dataset=PT_DATASET,
        variants=PT_VARIANTS,
    # A table from a few small JSON files: well under a second; memory the interpreter's.
    threads: 1
    resources:
        mem_mb=memory_mb(500),
        runtime=10,
    log:
        f"logs/tabulate_pose_transfer/{PT_DATASET}.log",
    benchmark:
        f"benchmarks/tabulate_pose_transfer/{PT_DATASET}.tsv"
    conda:
        "../../envs/pose_transfer.yaml"
    script:
        "../../scripts/tabulate_pose_transfer.py"


rule draw_pose_transfer_grid:
    input:
        predictions=expand(
            rules.eval_pose_transfer.output.predictions,
            pt_variant=PT_VARIANTS,
            replicate=0,
            pt_test=PT["figure"]["test"],
        ),
    output:
        grid=report(
            f"results/tables/{PT_DATASET}/pose_transfer_grid.png",
            caption="../report/pose_transfer_grid.rst",
            category="Pose transfer",
            labels={"figure": "identity / pose / each variant / ground truth"},
        ),
    params:
        variants=PT_VARIANTS,
        n_pairs=PT["figure"]["n_pairs"],
        size=PT["figure"]["size"],
        camera=config["render"]["camera"],  # its angles; it looks at each centred mesh
        distance=PT["figure"]["distance"],
    # A few renders with the software renderer: seconds; memory the interpreter's and Mesa's.
    threads: 1
    resources:
        mem_mb=memory_mb(1000),
        runtime=10,
    log:
        f"logs/draw_pose_transfer_grid/{PT_DATASET}.log",
    benchmark:
        f"benchmarks/draw_pose_transfer_grid/{PT_DATASET}.tsv"
    conda:
        "../../envs/pose_transfer.yaml"
    script:
        "../../scripts/draw_pose_transfer_grid.py"

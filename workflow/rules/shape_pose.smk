# Shape and pose from one image (seed 002 chapters 5-6, differentiable point clouds) per variant:
# train on the renders or a stylized copy, score on every test set and on the real cut-outs, tabulate.


rule train_shape_pose:
    input:
        data=shape_pose_data,
    output:
        model=f"{SHAPE_POSE_DIR}/model.pt",
        losses=f"{SHAPE_POSE_DIR}/losses.csv",
    params:
        # not an output: Snakemake would delete it on failure, and resuming needs it
        checkpoint_dir=f"results/checkpoints/shape_pose/{CARS}/{{variant}}/r{{replicate}}",
        model=SHAPE_POSE["model"],
        projection=SHAPE_POSE["projection"],
        losses=SHAPE_POSE["losses"],
        training=SHAPE_POSE["training"],
        device=SHAPE_POSE["device"],
        seed=training_seed("shape_pose"),
    # One thread: two variants side by side on two cores. Demo sizes: 0.24 s per step of 16 images
    # on one core, 95-97 s for the default 400 steps (measured, machine loaded); the seed's 600k
    # steps of 16 images at 128 px want the GPU (3.5 days on a GTX 1080 Ti).
    priority: 4  # on the longest chain (segmenter, cut-outs, style transfer, shape and pose)
    threads: 1
    resources:
        mem_mb=memory_mb(4000),
        runtime=1440,  # minutes per attempt; a longer run resumes from its checkpoint when retried
        gpu=1,
        nodes=1,  # several GPUs on one node: --set-resources train_shape_pose:gpu=N runs DDP
        # GPU memory the real config needs, estimated from the CPU peak, not measured on a GPU (none
        # was available): one fp32 step at cars.yaml's sizes (128 px, fc 1024, 8000 points, grid 64,
        # 16 images) peaked at 1.9 GB resident on the CPU, 0.9 GB of it the imports
        # (benchmarks/train_step.py --size real, 2026-12-07).
        gpu_mem_mb=2000,  # estimated
    log:
        f"logs/train_shape_pose/{CARS}/{{variant}}/r{{replicate}}.log",
    benchmark:
        f"benchmarks/train_shape_pose/{CARS}/{{variant}}/r{{replicate}}.tsv"
    conda:
        "../../envs/shape_pose.yaml"
    script:
        "../../scripts/train_shape_pose.py"


rule eval_shape_pose:
    input:
        model=shape_pose_model,
        align_data=shape_pose_data,
        test_data=shape_pose_test_data,
    output:
        csv=f"{SHAPE_POSE_DIR}/eval_{{test_set}}.csv",
        json=f"{SHAPE_POSE_DIR}/eval_{{test_set}}.json",
    params:
        evaluation=SHAPE_POSE_SCORING,
        untrained=shape_pose_untrained,
        replicate=replicate_number,
        device=SHAPE_POSE["device"],
        seed=config["seed"],
    # Prediction on the test split, ICP alignment on the variant's own validation split, Chamfer
    # with a k-d tree: 6.5 s per job for the demo's 40 test views on one core (about 3 s of it
    # imports).
    priority: 3  # on the longest chain (segmenter, cut-outs, style transfer, shape and pose)
    threads: 1
    resources:
        mem_mb=memory_mb(2000),
        runtime=120,  # minutes; the seed's 7500 test images
        gpu=1,
    log:
        f"logs/eval_shape_pose/{CARS}/{{variant}}/r{{replicate}}/{{test_set}}.log",
    benchmark:
        f"benchmarks/eval_shape_pose/{CARS}/{{variant}}/r{{replicate}}/{{test_set}}.tsv"
    conda:
        "../../envs/shape_pose.yaml"
    script:
        "../../scripts/eval_shape_pose.py"


rule eval_real_masks:
    input:
        model=shape_pose_model,
        cutouts=real_cutouts("test"),
        synthetic=synthetic_root(),
    output:
        csv=f"{SHAPE_POSE_DIR}/real_masks.csv",
    params:
        evaluation=SHAPE_POSE_MASKING,
        untrained=shape_pose_untrained,
        replicate=replicate_number,
        device=SHAPE_POSE["device"],
        seed=config["seed"],
    # The held-out real cut-outs and the synthetic test views through the network, each predicted
    # cloud drawn as a mask: 3.6 s per job at demo size (8 cut-outs, 40 views) on one core.
    threads: 1
    resources:
        mem_mb=memory_mb(2000),
        runtime=60,  # minutes; the seed's 2818 cut-outs
        gpu=1,
    log:
        f"logs/eval_real_masks/{CARS}/{{variant}}/r{{replicate}}.log",
    benchmark:
        f"benchmarks/eval_real_masks/{CARS}/{{variant}}/r{{replicate}}.tsv"
    conda:
        "../../envs/shape_pose.yaml"
    script:
        "../../scripts/eval_real_masks.py"


rule tabulate_shape_pose:
    input:
        summaries=expand(
            rules.eval_shape_pose.output.json,
            variant=SHAPE_POSE_EVAL_VARIANTS,
            replicate=REPLICATES,
            test_set=SHAPE_POSE_TEST_SETS,
        ),
        real_masks=expand(
            rules.eval_real_masks.output.csv, variant=SHAPE_POSE_EVAL_VARIANTS, replicate=REPLICATES
        ),
    output:
        csv=report(
            f"results/tables/{CARS}/shape_pose.csv",
            caption="../report/shape_pose_table.rst",
            category="Shape and pose",
            subcategory="synthetic test sets",
            labels={"result": "table 6.2", "format": "CSV"},
        ),
        md=report(
            f"results/tables/{CARS}/shape_pose.md",
            caption="../report/shape_pose_table.rst",
            category="Shape and pose",
            subcategory="synthetic test sets",
            labels={"result": "table 6.2", "format": "Markdown"},
        ),
        per_replicate_csv=f"results/tables/{CARS}/shape_pose_replicates.csv",
        differences_csv=f"results/tables/{CARS}/shape_pose_differences.csv",
        plot=report(
            f"results/tables/{CARS}/shape_pose_real_masks.png",
            caption="../report/shape_pose_real_masks_plot.rst",
            category="Shape and pose",
            subcategory="real cut-outs",
            labels={"result": "figures 6.5 and 7.1", "format": "PNG"},
        ),
        real_md=report(
            f"results/tables/{CARS}/shape_pose_real_masks.md",
            caption="../report/shape_pose_real_masks.rst",
            category="Shape and pose",
            subcategory="real cut-outs",
            labels={"result": "mask disagreement", "format": "Markdown"},
        ),
    params:
        variants=SHAPE_POSE_EVAL_VARIANTS,  # the rows' order; each file names its variant and replicate
        replicates=len(REPLICATES),  # every variant must have replicates 0 .. n - 1
        dataset=CARS,
        kde_points=SHAPE_POSE_KDE_POINTS,
    # Two tables and one plot from small files: 1.2 s measured, mostly the imports.
    threads: 1
    resources:
        mem_mb=memory_mb(500),
        runtime=5,
    log:
        f"logs/tabulate_shape_pose/{CARS}.log",
    benchmark:
        f"benchmarks/tabulate_shape_pose/{CARS}.tsv"
    conda:
        "../../envs/shape_pose.yaml"
    script:
        "../../scripts/tabulate_shape_pose.py"

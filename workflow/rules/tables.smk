# Does each trained stage learn? Every stage's headline metric against its baseline and target.


rule tabulate_learning:
    input:
        shape_pose=expand(
            rules.eval_shape_pose.output.json,
            variant=["original", SHAPE_POSE_UNTRAINED],
            replicate=REPLICATES,
            test_set="original",
        ),
        neural_parts=expand(
            rules.eval_neural_parts.output.metrics,
            n_primitives=NEURAL_PARTS["primitives"],
            replicate=REPLICATES,
            weights=["trained", "untrained"],
        ),
        segmentation=expand(rules.tabulate_segments.output.quality_csv, replicate=REPLICATES)
        if LEARNING_SEGMENTER
        else [],
        style=expand(rules.report_style_transfer.output.table_csv, experiment=LEARNING_STYLE, replicate=REPLICATES),
        losses_shape_pose=expand(rules.train_shape_pose.output.losses, variant="original", replicate=REPLICATES),
        losses_neural_parts=expand(
            rules.train_neural_parts.output.losses, n_primitives=NEURAL_PARTS["primitives"], replicate=REPLICATES
        ),
        losses_segmentation=expand(rules.train_segmenter.output.losses, replicate=REPLICATES)
        if LEARNING_SEGMENTER
        else [],
        losses_style=expand(rules.train_style_transfer.output.losses, experiment=LEARNING_STYLE, replicate=REPLICATES),
        # the evaluation summaries that hold the trained value beside its baselines (summary_rows)
        summary_pose_transfer=expand(
            rules.eval_pose_transfer.output.metrics, pt_variant=PT_VARIANTS, replicate=REPLICATES, pt_test="seen"
        ),
        summary_pose2mesh=p2m_runs(rules.eval_pose2mesh.output.metrics),
        summary_lwgan=expand(rules.eval_lwgan.output.metrics, lw_experiment=LWGAN_EXPERIMENTS, replicate=REPLICATES),
        losses_pose_transfer=expand(rules.train_pose_transfer.output.losses, pt_variant=PT_VARIANTS, replicate=REPLICATES),
        losses_pose2mesh=p2m_runs(rules.train_meshnet.output.losses),
        losses_lwgan=expand(rules.train_lwgan.output.losses, lw_experiment=LWGAN_EXPERIMENTS, replicate=REPLICATES),
    output:
        csv=report(
            "results/tables/learning.csv",
            caption="../report/learning.rst",
            category="Learning",
            labels={"table": "learning", "format": "CSV"},
        ),
        md=report(
            "results/tables/learning.md",
            caption="../report/learning.rst",
            category="Learning",
            labels={"table": "learning", "format": "Markdown"},
        ),
        **{
            f"curve_{stage}": report(
                f"results/tables/learning_{stage}.png",
                caption="../report/learning_curves.rst",
                category="Learning",
                labels={"figure": "validation curve", "stage": stage},
            )
            for stage in LEARNING_STAGES
        },
    params:
        # one entry per input file, in expand's order (the first keyword varies slowest)
        shape_pose_variants=[v for v in ["original", SHAPE_POSE_UNTRAINED] for _ in REPLICATES],
        neural_parts_counts=[n for n in NEURAL_PARTS["primitives"] for _ in REPLICATES for _ in range(2)],
        neural_parts_weights=[w for _ in NEURAL_PARTS["primitives"] for _ in REPLICATES for w in ("trained", "untrained")],
        style_experiment=config["learning"]["style_experiment"],
        curve_groups={
            "shape_pose": [("original", r) for r in REPLICATES],
            "neural_parts": [(f"P{n}", r) for n in NEURAL_PARTS["primitives"] for r in REPLICATES],
            "segmentation": [("segmenter", r) for r in REPLICATES] if LEARNING_SEGMENTER else [],
            "style_transfer": [(e, r) for e in LEARNING_STYLE for r in REPLICATES],
            "pose_transfer": [(v, r) for v in PT_VARIANTS for r in REPLICATES],
            "pose2mesh": [(e, r) for e in P2M_EXPERIMENTS for r in REPLICATES],
            "lwgan": [(e, r) for e in LWGAN_EXPERIMENTS for r in REPLICATES],
        },
        summary_groups={
            "pose_transfer": [v for v in PT_VARIANTS for _ in REPLICATES],
            "pose2mesh": [e for e in P2M_EXPERIMENTS for _ in REPLICATES],
            "lwgan": [e for e in LWGAN_EXPERIMENTS for _ in REPLICATES],
        },
        stages=LEARNING_STAGES,
        targets=config["learning"]["targets"],
        scale=_learning_scale(),
    # A table and a few plots from small files: seconds, mostly matplotlib's import.
    threads: 1
    resources:
        mem_mb=memory_mb(500),
        runtime=5,
    log:
        "logs/tabulate_learning/tabulate_learning.log",
    benchmark:
        "benchmarks/tabulate_learning/tabulate_learning.tsv"
    conda:
        "../../envs/images.yaml"
    script:
        "../../scripts/tabulate_learning.py"


# Both branches end here: every metric table on one page, the one a reader opens first.


rule collect_tables:
    input:
        learning=rules.tabulate_learning.output.md,
        learning_curves=[rules.tabulate_learning.output[f"curve_{stage}"] for stage in LEARNING_STAGES],
        neural_parts=rules.tabulate_neural_parts.output.md,
        # the filters and frame ratios of the first replicate; quality pooled over replicates
        segment_filters=expand(rules.tabulate_segments.output.filters_md, replicate=0),
        frame_ratio=expand(rules.tabulate_segments.output.ratio_md, replicate=0),
        frame_ratio_plot=expand(rules.tabulate_segments.output.ratio_png, replicate=0),
        segmentation_quality=rules.summarize_segments.output.quality_md,
        style_summary=rules.tabulate_style_transfer.output.md,
        style_curves=expand(
            rules.report_style_transfer.output.curves, experiment=STYLE_EXPERIMENTS, replicate=0
        ),
        style_grids=expand(
            rules.report_style_transfer.output.grid, experiment=STYLE_EXPERIMENTS, replicate=0
        ),
        shape_pose=rules.tabulate_shape_pose.output.md,
        shape_pose_real=rules.tabulate_shape_pose.output.real_md,
        shape_pose_plot=rules.tabulate_shape_pose.output.plot,
        pose_transfer=[rules.tabulate_pose_transfer.output.md, rules.draw_pose_transfer_grid.output.grid],
        pose2mesh=[
            rules.tabulate_pose2mesh.output.md,
            rules.tabulate_pose2mesh.output.curves,
            rules.tabulate_pose2mesh.output.figure,
        ],
        lwgan=[
            rules.tabulate_lwgan.output.study_md,
            rules.tabulate_lwgan.output.metrics_md,
            rules.tabulate_lwgan.output.curves,
            *expand(rules.eval_lwgan.output.strip, lw_experiment=LWGAN_EXPERIMENTS[:1], replicate=0),
        ],
    output:
        index=report(
            "results/tables/index.md",
            caption="../report/collect_tables.rst",
            category="Metric tables",
        ),
    params:
        mesh_dataset=DATASET,
        cars_dataset=CARS,
        style_experiments=STYLE_EXPERIMENTS,
        pose_transfer_dataset=PT_DATASET,
        pose2mesh_dataset=P2M_DATASET,
        lwgan_scale="demo scale" if LWGAN_DEMO else "full scale",
    # Markdown from the tables already written: 0.14 s measured; the interpreter is most of it.
    threads: 1
    resources:
        mem_mb=memory_mb(500),
        runtime=5,
    log:
        "logs/collect_tables/collect_tables.log",
    benchmark:
        "benchmarks/collect_tables/collect_tables.tsv"
    conda:
        "../../envs/images.yaml"
    script:
        "../../scripts/collect_tables.py"

# Both branches end here: every metric table on one page, the one a reader opens first.


rule collect_tables:
    input:
        neural_parts=rules.tabulate_neural_parts.output.md,
        segment_filters=rules.tabulate_segments.output.filters_md,
        frame_ratio=rules.tabulate_segments.output.ratio_md,
        frame_ratio_plot=rules.tabulate_segments.output.ratio_png,
        segmentation_quality=rules.tabulate_segments.output.quality_md,
        style_tables=expand(rules.report_style_transfer.output.table_md, experiment=STYLE_EXPERIMENTS),
        style_curves=expand(rules.report_style_transfer.output.curves, experiment=STYLE_EXPERIMENTS),
        style_grids=expand(rules.report_style_transfer.output.grid, experiment=STYLE_EXPERIMENTS),
        shape_pose=rules.tabulate_shape_pose.output.md,
        shape_pose_real=rules.tabulate_shape_pose.output.real_md,
        shape_pose_plot=rules.tabulate_shape_pose.output.plot,
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

# The thesis filters and frame-ratio normalization (seed 002 sections 3.1-3.3) and their tables.

rule filter_segments:
    input:
        instances=rules.gather_segments.output.instances,
        photos=photos_root(),
    output:
        accepted=directory(f"results/cutouts/{CARS}/r{{replicate}}/accepted"),
        decisions=f"results/cutouts/{CARS}/r{{replicate}}/decisions.csv",
    params:
        thresholds=config["filters"],
    # One process; measured 1.8 s and 112 MB for the demo's 60 instances (it holds one photo at
    # a time, so memory follows the photo size, not the number of instances).
    priority: 10  # on the longest chain (segmenter, cut-outs, style transfer, shape and pose)
    threads: 1
    resources:
        mem_mb=memory_mb(1000),
        runtime=30,  # minutes; about 20 ms per instance, so thousands of photos fit
    log:
        f"logs/filter_segments/{CARS}/r{{replicate}}.log",
    benchmark:
        f"benchmarks/filter_segments/{CARS}/r{{replicate}}.tsv"
    conda:
        "../../envs/images.yaml"
    script:
        "../../scripts/filter_segments.py"


rule fit_frame_ratio:
    input:
        synthetic=synthetic_root(),
    output:
        fit=f"results/frame_ratio/{CARS}/synthetic.json",
        ratios=f"results/frame_ratio/{CARS}/synthetic_ratios.csv",
    params:
        split=config["normalize"]["fit_split"],
    # A least-squares fit over one ratio per render: 0.6 s and 98 MB measured on the demo.
    priority: 10  # on the longest chain (segmenter, cut-outs, style transfer, shape and pose)
    threads: 1
    resources:
        mem_mb=memory_mb(500),
        runtime=10,
    log:
        f"logs/fit_frame_ratio/{CARS}.log",
    benchmark:
        f"benchmarks/fit_frame_ratio/{CARS}.tsv"
    conda:
        "../../envs/images.yaml"
    script:
        "../../scripts/fit_frame_ratio.py"


rule normalize_segments:
    input:
        cutouts=rules.filter_segments.output.accepted,
        fit=rules.fit_frame_ratio.output.fit,
    output:
        train=directory(f"results/normalized/{CARS}/r{{replicate}}/train"),
        test=directory(f"results/normalized/{CARS}/r{{replicate}}/test"),
        ratios=f"results/normalized/{CARS}/r{{replicate}}/ratios.csv",
    params:
        seed=config["seed"],
        train_fraction=config["normalize"]["train_fraction"],
    # One cut-out at a time: 0.65 s and 96 MB measured on the demo; time grows with the cut-outs.
    priority: 10  # on the longest chain (segmenter, cut-outs, style transfer, shape and pose)
    threads: 1
    resources:
        mem_mb=memory_mb(500),
        runtime=30,
    log:
        f"logs/normalize_segments/{CARS}/r{{replicate}}.log",
    benchmark:
        f"benchmarks/normalize_segments/{CARS}/r{{replicate}}.tsv"
    conda:
        "../../envs/images.yaml"
    script:
        "../../scripts/normalize_segments.py"


rule tabulate_segments:
    input:
        decisions=rules.filter_segments.output.decisions,
        synthetic=rules.fit_frame_ratio.output.ratios,
        ratios=rules.normalize_segments.output.ratios,
        instances=rules.gather_segments.output.instances,
        # the demo photos' true instances score segments and filters; real photos have none
        truth=[] if photos_truth() is None else [photos_truth()],
    output:
        funnel_csv=f"results/tables/{CARS}/r{{replicate}}/segment_funnel.csv",
        filters_csv=f"results/tables/{CARS}/r{{replicate}}/segment_filters.csv",
        filters_md=report(
            f"results/tables/{CARS}/r{{replicate}}/segment_filters.md",
            caption="../report/segment_filters.rst",
            category="Image branch",
            subcategory="replicate {replicate}",
            labels={"table": "segment filters", "replicate": "{replicate}"},
        ),
        ratio_csv=f"results/tables/{CARS}/r{{replicate}}/frame_ratio.csv",
        ratio_md=report(
            f"results/tables/{CARS}/r{{replicate}}/frame_ratio.md",
            caption="../report/frame_ratio.rst",
            category="Image branch",
            subcategory="replicate {replicate}",
            labels={"table": "frame ratio", "replicate": "{replicate}"},
        ),
        ratio_png=report(
            f"results/tables/{CARS}/r{{replicate}}/frame_ratio.png",
            caption="../report/frame_ratio_plot.rst",
            category="Image branch",
            subcategory="replicate {replicate}",
            labels={"figure": "frame ratio", "replicate": "{replicate}"},
        ),
        quality_csv=f"results/tables/{CARS}/r{{replicate}}/segmentation_quality.csv",
        quality_md=report(
            f"results/tables/{CARS}/r{{replicate}}/segmentation_quality.md",
            caption="../report/segmentation_quality.rst",
            category="Image branch",
            subcategory="replicate {replicate}",
            labels={"table": "segmentation quality", "replicate": "{replicate}"},
        ),
    # Tables and one plot from CSV/JSON files: 1.1 s and 128 MB (matplotlib) measured.
    threads: 1
    resources:
        mem_mb=memory_mb(500),
        runtime=10,
    log:
        f"logs/tabulate_segments/{CARS}/r{{replicate}}.log",
    benchmark:
        f"benchmarks/tabulate_segments/{CARS}/r{{replicate}}.tsv"
    conda:
        "../../envs/images.yaml"
    script:
        "../../scripts/tabulate_segments.py"



rule summarize_segments:
    input:
        quality=expand(rules.tabulate_segments.output.quality_csv, replicate=REPLICATES),
        funnel=expand(rules.tabulate_segments.output.funnel_csv, replicate=REPLICATES),
    output:
        quality_csv=f"results/tables/{CARS}/segmentation_quality.csv",
        quality_md=report(
            f"results/tables/{CARS}/segmentation_quality.md",
            caption="../report/segmentation_summary.rst",
            category="Image branch",
            subcategory="over replicates",
            labels={"table": "segmentation quality over replicates"},
        ),
        funnel_csv=f"results/tables/{CARS}/segment_funnel_replicates.csv",
    params:
        replicates=REPLICATES,
        targets=config["learning"]["targets"]["segmentation"],
    threads: 1
    resources:
        mem_mb=memory_mb(500),
        runtime=5,
    log:
        f"logs/summarize_segments/{CARS}.log",
    benchmark:
        f"benchmarks/summarize_segments/{CARS}.tsv"
    conda:
        "../../envs/images.yaml"
    script:
        "../../scripts/summarize_segments.py"

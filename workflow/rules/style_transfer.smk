# Annotation-invariant style transfer (seed 002 chapter 4) per experiment: train, stylize, report.


rule train_style_transfer:
    input:
        synthetic=synthetic_root(),
        real=real_cutouts("train"),
    output:
        model=f"{STYLE_DIR}/model.pt",
        losses=f"{STYLE_DIR}/losses.csv",
    params:
        experiment=style_experiment,
        # not an output: Snakemake would delete it on failure, and resuming needs it
        checkpoint_dir=f"results/checkpoints/style_transfer/{CARS}/{{experiment}}/r{{replicate}}",
        model=STYLE["model"],
        training=STYLE["training"],
        features=STYLE["features"],
        device=STYLE["device"],
        seed=training_seed("style_transfer"),
    # One thread: two experiments side by side on two cores (demo widths: 0.72 s/step measured on
    # an idle core, 1.5 s with the machine loaded); the seed's full-width networks want the GPU
    # (benchmarks/style_step.py: 5.7 s per step on two CPU cores).
    threads: 1
    priority: 5  # next on the longest chain (after the segmenter): stylized renders feed shape and pose
    resources:
        mem_mb=memory_mb(4000),
        runtime=1440,  # minutes; the demo default takes about 2 on one CPU core
        gpu=1,
        nodes=1,  # several GPUs on one node: --set-resources train_style_transfer:gpu=N runs DDP
        # GPU memory the real config needs, estimated from the CPU peak, not measured on a GPU (none
        # was available): one fp32 step at cars.yaml's sizes (ngf 64, batch 4, 128 px) peaked at 3.4
        # GB resident on the CPU (benchmarks/train_step.py --size real, 2026-12-07).
        gpu_mem_mb=4000,  # estimated
    log:
        f"logs/train_style_transfer/{CARS}/{{experiment}}/r{{replicate}}.log",
    benchmark:
        f"benchmarks/train_style_transfer/{CARS}/{{experiment}}/r{{replicate}}.tsv"
    conda:
        "../../envs/style.yaml"
    script:
        "../../scripts/train_style_transfer.py"


rule stylize:
    input:
        model=rules.train_style_transfer.output.model,
        synthetic=synthetic_root(),
    output:
        data=directory(f"results/stylized/{CARS}/{{experiment}}/r{{replicate}}"),
        alpha=f"{STYLE_DIR}/alpha.csv",
    params:
        device=STYLE["device"],
    priority: 5  # on the longest chain (segmenter, cut-outs, style transfer, shape and pose)
    threads: 1
    resources:
        mem_mb=memory_mb(2000),
        runtime=240,  # minutes; 200 demo renders take 3.5 s on one CPU core
        gpu=1,
    log:
        f"logs/stylize/{CARS}/{{experiment}}/r{{replicate}}.log",
    benchmark:
        f"benchmarks/stylize/{CARS}/{{experiment}}/r{{replicate}}.tsv"
    conda:
        "../../envs/style.yaml"
    script:
        "../../scripts/stylize.py"


rule report_style_transfer:
    input:
        model=rules.train_style_transfer.output.model,
        losses=rules.train_style_transfer.output.losses,
        alpha=rules.stylize.output.alpha,
        synthetic=synthetic_root(),
        real_test=real_cutouts("test"),
    output:
        curves=report(
            f"results/tables/{CARS}/r{{replicate}}/style_{{experiment}}_losses.png",
            caption="../report/style_losses.rst",
            category="Style transfer",
            subcategory="{experiment}, replicate {replicate}",
            labels={"experiment": "{experiment}", "replicate": "{replicate}", "figure": "loss curves"},
        ),
        grid=report(
            f"results/tables/{CARS}/r{{replicate}}/style_{{experiment}}_samples.png",
            caption="../report/style_samples.rst",
            category="Style transfer",
            subcategory="{experiment}, replicate {replicate}",
            labels={"experiment": "{experiment}", "replicate": "{replicate}", "figure": "samples"},
        ),
        table_csv=f"results/tables/{CARS}/r{{replicate}}/style_{{experiment}}.csv",
        table_md=report(
            f"results/tables/{CARS}/r{{replicate}}/style_{{experiment}}.md",
            caption="../report/style_table.rst",
            category="Style transfer",
            subcategory="{experiment}, replicate {replicate}",
            labels={"experiment": "{experiment}", "replicate": "{replicate}", "table": "losses and alpha disagreement"},
        ),
    params:
        experiment="{experiment}",
        window=STYLE["report"]["window"],
        n_samples=STYLE["report"]["samples"],
        seed=config["seed"],
        device=STYLE["device"],
    # Two plots and a table; G and F on a few test images. No GPU asked: the CPU takes seconds.
    threads: 1
    resources:
        mem_mb=memory_mb(1500),
        runtime=15,
    log:
        f"logs/report_style_transfer/{CARS}/{{experiment}}/r{{replicate}}.log",
    benchmark:
        f"benchmarks/report_style_transfer/{CARS}/{{experiment}}/r{{replicate}}.tsv"
    conda:
        "../../envs/style.yaml"
    script:
        "../../scripts/report_style_transfer.py"


rule tabulate_style_transfer:
    input:
        tables=expand(
            rules.report_style_transfer.output.table_csv,
            experiment=STYLE_EXPERIMENTS,
            replicate=REPLICATES,
        ),
    output:
        csv=f"results/tables/{CARS}/style_transfer.csv",
        md=report(
            f"results/tables/{CARS}/style_transfer.md",
            caption="../report/style_summary.rst",
            category="Style transfer",
            subcategory="over replicates",
            labels={"table": "experiments over replicates"},
        ),
        comparison_csv=f"results/tables/{CARS}/style_transfer_comparison.csv",
    params:
        # one entry per table, in the order of the input (expand: experiments, then replicates)
        experiments=[e for e in STYLE_EXPERIMENTS for _ in REPLICATES],
        replicates=[r for _ in STYLE_EXPERIMENTS for r in REPLICATES],
    threads: 1
    resources:
        mem_mb=memory_mb(500),
        runtime=5,
    log:
        f"logs/tabulate_style_transfer/{CARS}.log",
    benchmark:
        f"benchmarks/tabulate_style_transfer/{CARS}.tsv"
    conda:
        "../../envs/style.yaml"
    script:
        "../../scripts/tabulate_style_transfer.py"

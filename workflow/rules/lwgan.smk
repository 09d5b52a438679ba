# Liquid Warping GAN (seed 004): the demo iPER data, one training per experiment of the stabilizer
# study and replicate, held-out self-imitation, and the study's tables, curves and animation.

include: "lwgan_common.smk"


rule make_demo_iper:
    output:
        data=directory("results/demo_iper/iPER"),
    params:
        seed=config["seed"],
        **LWGAN["demo"],
    # Renders 96 frames of 64 px (a 1500-face body, moderngl EGL): 7 CPU s measured, 0.8 GB.
    threads: 1
    resources:
        mem_mb=memory_mb(1500),
        runtime=10,
    log:
        "logs/make_demo_iper/iPER.log",
    benchmark:
        "benchmarks/make_demo_iper/iPER.tsv"
    conda:
        "../../envs/lwgan.yaml"
    script:
        "../../scripts/make_demo_iper.py"


rule train_lwgan:
    input:
        data=lwgan_data(),
    output:
        model=f"{LWGAN_DIR}/model.pt",
        losses=f"{LWGAN_DIR}/losses.csv",
    params:
        experiment=lwgan_experiment,
        # not an output: Snakemake would delete it on failure, and resuming needs it
        checkpoint_dir="results/checkpoints/lwgan/{lw_experiment}/r{replicate}",
        model=LWGAN["model"],
        training=LWGAN["training"],
        weights=LWGAN["weights"],
        device=LWGAN["device"],
        seed=training_seed("lwgan"),
    wildcard_constraints:
        lw_experiment="[A-Za-z0-9][A-Za-z0-9_]*",
        replicate="[0-9]+",
    # One thread (two experiments side by side on two cores). Demo widths at 64 px: 0.09-0.13 CPU
    # s per step, 30-47 CPU s for the 300 demo steps (max RSS 0.9 GB); the seed's 256 px
    # full-width networks want the GPU.
    threads: 1
    resources:
        mem_mb=memory_mb(2500),
        runtime=2880,  # minutes; the demo default takes under 1 on one CPU core
        gpu=1,
        nodes=1,  # several GPUs on one node: --set-resources train_lwgan:gpu=N runs DDP
        # GPU memory the real config needs, estimated from the CPU peak, not measured on a GPU (none
        # was available): one fp32 step at iper.yaml's sizes (256 px, conv_dim 64, VGG-19) peaked at
        # 5.4 GB resident on the CPU (benchmarks/train_step.py --size real, 2026-12-07).
        gpu_mem_mb=6000,  # estimated
    log:
        "logs/train_lwgan/{lw_experiment}/r{replicate}.log",
    benchmark:
        "benchmarks/train_lwgan/{lw_experiment}/r{replicate}.tsv"
    conda:
        "../../envs/lwgan.yaml"
    script:
        "../../scripts/train_lwgan.py"


rule eval_lwgan:
    input:
        model=rules.train_lwgan.output.model,
        data=lwgan_data(),
    output:
        metrics=f"{LWGAN_DIR}/eval.json",
        predictions=f"{LWGAN_DIR}/predictions.npz",
        strip=report(
            f"{LWGAN_DIR}/imitation.png",
            caption="../report/lwgan_imitation.rst",
            category="Liquid Warping GAN",
            subcategory="{lw_experiment}, replicate {replicate}",
            labels={"experiment": "{lw_experiment}", "replicate": "{replicate}", "figure": "frame strip"},
        ),
        animation=report(
            f"{LWGAN_DIR}/imitation.gif",
            caption="../report/lwgan_imitation.rst",
            category="Liquid Warping GAN",
            subcategory="{lw_experiment}, replicate {replicate}",
            labels={"experiment": "{lw_experiment}", "replicate": "{replicate}", "figure": "animation"},
        ),
    params:
        replicate=replicate_number,
        cross_reference=LWGAN["evaluation"]["cross_reference"],
        known_background=LWGAN["evaluation"]["known_background"],
        weights=LWGAN["weights"],
        device=LWGAN["device"],
    wildcard_constraints:
        lw_experiment="[A-Za-z0-9][A-Za-z0-9_]*",
        replicate="[0-9]+",
    threads: 1
    resources:
        mem_mb=memory_mb(2000),
        runtime=60,  # minutes; the demo's 22 held-out pairs and 12 imitation frames: 7-8 CPU s
        gpu=1,
    log:
        "logs/eval_lwgan/{lw_experiment}/r{replicate}.log",
    benchmark:
        "benchmarks/eval_lwgan/{lw_experiment}/r{replicate}.tsv"
    conda:
        "../../envs/lwgan.yaml"
    script:
        "../../scripts/eval_lwgan.py"


rule tabulate_lwgan:
    input:
        metrics=expand(rules.eval_lwgan.output.metrics, lw_experiment=LWGAN_EXPERIMENTS,
                       replicate=REPLICATES),
        losses=expand(rules.train_lwgan.output.losses, lw_experiment=LWGAN_EXPERIMENTS,
                      replicate=REPLICATES),
    output:
        study_csv=report(
            f"{LWGAN_TABLES}/lwgan_study.csv",
            caption="../report/lwgan_study.rst",
            category="Liquid Warping GAN",
            labels={"table": "seed 004 table 1 beside ours"},
        ),
        study_md=f"{LWGAN_TABLES}/lwgan_study.md",
        metrics_csv=report(
            f"{LWGAN_TABLES}/lwgan_metrics.csv",
            caption="../report/lwgan_metrics.rst",
            category="Liquid Warping GAN",
            labels={"table": "self-imitation SSIM / PSNR / masked L1"},
        ),
        metrics_md=f"{LWGAN_TABLES}/lwgan_metrics.md",
        curves=report(
            f"{LWGAN_TABLES}/lwgan_losses.png",
            caption="../report/lwgan_losses.rst",
            category="Liquid Warping GAN",
            labels={"figure": "loss curves per experiment"},
        ),
    params:
        experiments=LWGAN_EXPERIMENTS,
        replicates=REPLICATES,
        window=LWGAN["evaluation"]["window"],
        scale="demo scale" if LWGAN_DEMO else "full scale",
    # Tables from a few small files and one plot: about 2 s, the interpreter's memory.
    threads: 1
    resources:
        mem_mb=memory_mb(800),
        runtime=10,
    log:
        "logs/tabulate_lwgan/tables.log",
    benchmark:
        "benchmarks/tabulate_lwgan/tables.tsv"
    conda:
        "../../envs/lwgan.yaml"
    script:
        "../../scripts/tabulate_lwgan.py"

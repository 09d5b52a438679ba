# Pose2Mesh (seed 001): Human3.6M's layout (or a demo of it), PoseNet, then the whole model from
# it, per optimizer experiment and replicate; the table, curves, sample figure and disk use.

include: "pose2mesh_common.smk"


if P2M_DEMO:

    rule make_demo_h36m:
        output:
            data=directory(f"results/pose2mesh/{P2M_DATASET}/data"),
        params:
            seed=config["seed"],
            test_subsample=P2M["split"]["subsample"]["test"],
            **P2M["demo"],
        # 6 s measured (JSON of 13440 images, the coarse template built once); memory: the JSON
        threads: 1
        resources:
            mem_mb=memory_mb(1500),
            runtime=15,
        log:
            f"logs/make_demo_h36m/{P2M_DATASET}.log",
        benchmark:
            f"benchmarks/make_demo_h36m/{P2M_DATASET}.tsv"
        conda:
            "../../envs/pose2mesh.yaml"
        script:
            "../../scripts/make_demo_h36m.py"


rule train_posenet:
    input:
        data=p2m_data(),
    output:
        model=f"{P2M_DIR}/posenet.pt",
        losses=f"{P2M_DIR}/posenet_losses.csv",
    params:
        experiment=p2m_posenet_experiment,
        # not an output: Snakemake would delete it on failure, and resuming needs it
        checkpoint_dir=f"{P2M_CHECKPOINTS}/posenet",
        split=P2M["split"],
        noise=P2M["noise"],
        model=P2M["model"],
        training=P2M["posenet"]["training"],
        smpl_model=P2M["smpl_model"],
        device=P2M["device"],
        seed=training_seed("pose2mesh"),
    wildcard_constraints:
        p2m_experiment=one_of(P2M_EXPERIMENTS),
    # One thread (see train_neural_parts); 0.008 s per step measured on one CPU core (demo sizes),
    # 5.5-8 CPU-s per job, most of it reading the data. Released sizes (hidden 4096): the GPU.
    threads: 1
    resources:
        mem_mb=memory_mb(3000),
        runtime=600,  # minutes; the demo default takes well under 1 on one CPU core
        gpu=1,
        nodes=1,  # several GPUs on one node: --set-resources train_posenet:gpu=N runs DDP
        # GPU memory the real config needs, estimated from the CPU peak, not measured on a GPU (none
        # was available): one fp32 step at h36m.yaml's sizes (hidden 4096, batch 64) peaked at 1.6
        # GB resident on the CPU (benchmarks/train_step.py --size real, 2026-12-07).
        gpu_mem_mb=2000,  # estimated
    log:
        f"logs/train_posenet/{P2M_DATASET}/{{p2m_experiment}}/r{{replicate}}.log",
    benchmark:
        f"benchmarks/train_posenet/{P2M_DATASET}/{{p2m_experiment}}/r{{replicate}}.tsv"
    conda:
        "../../envs/pose2mesh.yaml"
    script:
        "../../scripts/train_posenet.py"


rule train_meshnet:
    input:
        data=p2m_data(),
        posenet=rules.train_posenet.output.model,
    output:
        model=f"{P2M_DIR}/model.pt",
        losses=f"{P2M_DIR}/losses.csv",
    params:
        experiment=p2m_experiment,
        checkpoint_dir=f"{P2M_CHECKPOINTS}/meshnet",
        split=P2M["split"],
        noise=P2M["noise"],
        model=P2M["model"],
        graph=P2M["graph"],
        losses=P2M["losses"],
        training=P2M["meshnet"]["training"],
        smpl_model=P2M["smpl_model"],
        device=P2M["device"],
        seed=training_seed("pose2mesh"),
    wildcard_constraints:
        p2m_experiment=one_of(P2M_EXPERIMENTS),
    # One thread; 0.11 s per step measured on one CPU core (demo: width 32, 992-vertex finest
    # level, batch 32), ~25 CPU-s per job (200 steps). Released sizes (width 256, 12288 vertices): GPU.
    threads: 1
    resources:
        mem_mb=memory_mb(4000),
        runtime=2880,  # minutes; the demo default takes under 1 on one CPU core
        gpu=1,
        nodes=1,  # several GPUs on one node: --set-resources train_meshnet:gpu=N runs DDP
        # GPU memory the real config needs, estimated from the CPU peak, not measured on a GPU (none
        # was available): one fp32 step at h36m.yaml's sizes (width 256, batch 64, 9 levels of a
        # 6746-vertex stand-in for SMPL) peaked at 11.9 GB resident on the CPU
        # (benchmarks/train_step.py --size real, 2026-12-07).
        gpu_mem_mb=12500,  # estimated
    log:
        f"logs/train_meshnet/{P2M_DATASET}/{{p2m_experiment}}/r{{replicate}}.log",
    benchmark:
        f"benchmarks/train_meshnet/{P2M_DATASET}/{{p2m_experiment}}/r{{replicate}}.tsv"
    conda:
        "../../envs/pose2mesh.yaml"
    script:
        "../../scripts/train_meshnet.py"


rule eval_pose2mesh:
    input:
        data=p2m_data(),
        posenet=rules.train_posenet.output.model,
        model=rules.train_meshnet.output.model,
    output:
        metrics=f"{P2M_DIR}/eval.json",
        predictions=f"{P2M_DIR}/predictions.npz",
    params:
        split=P2M["split"],
        replicate=replicate_number,
        smpl_model=P2M["smpl_model"],
        device=P2M["device"],
    wildcard_constraints:
        p2m_experiment=one_of(P2M_EXPERIMENTS),
    threads: 1
    resources:
        mem_mb=memory_mb(3000),  # the test meshes, three times (trained, untrained, truth)
        runtime=60,  # minutes; 8 s measured for the demo's 960 test samples on one CPU core
        gpu=1,
    log:
        f"logs/eval_pose2mesh/{P2M_DATASET}/{{p2m_experiment}}/r{{replicate}}.log",
    benchmark:
        f"benchmarks/eval_pose2mesh/{P2M_DATASET}/{{p2m_experiment}}/r{{replicate}}.tsv"
    conda:
        "../../envs/pose2mesh.yaml"
    script:
        "../../scripts/eval_pose2mesh.py"


rule tabulate_pose2mesh:
    input:
        metrics=p2m_runs(rules.eval_pose2mesh.output.metrics),
        predictions=p2m_runs(rules.eval_pose2mesh.output.predictions),
        posenet_losses=p2m_runs(rules.train_posenet.output.losses),
        meshnet_losses=p2m_runs(rules.train_meshnet.output.losses),
    output:
        csv=report(
            f"{P2M_TABLES}/pose2mesh.csv",
            caption="../report/pose2mesh_table.rst",
            category="Pose2Mesh",
            labels={"table": "MPJPE, PA-MPJPE and MPVPE per experiment"},
        ),
        md=f"{P2M_TABLES}/pose2mesh.md",
        replicates_csv=f"{P2M_TABLES}/pose2mesh_replicates.csv",
        disk_csv=report(
            f"{P2M_TABLES}/pose2mesh_checkpoint_disk.csv",
            caption="../report/pose2mesh_disk.rst",
            category="Pose2Mesh",
            labels={"table": "checkpoint disk use"},
        ),
        curves=report(
            f"{P2M_TABLES}/pose2mesh_curves.png",
            caption="../report/pose2mesh_curves.rst",
            category="Pose2Mesh",
            labels={"figure": "validation MPJPE per epoch"},
        ),
        figure=report(
            f"{P2M_TABLES}/pose2mesh_samples.png",
            caption="../report/pose2mesh_samples.rst",
            category="Pose2Mesh",
            labels={"figure": "2D input, predicted and true meshes"},
        ),
    params:
        # the checkpoint folders whose disk use is reported (not inputs: they are no rule's output)
        posenet_checkpoints=p2m_runs(f"{P2M_CHECKPOINTS}/posenet"),
        meshnet_checkpoints=p2m_runs(f"{P2M_CHECKPOINTS}/meshnet"),
        posenet_batch_size=P2M["posenet"]["training"]["batch_size"],
        meshnet_batch_size=P2M["meshnet"]["training"]["batch_size"],
        figure_frames=P2M["figure_frames"],
    # small JSON and CSV files and two matplotlib figures: ~4 s measured
    threads: 1
    resources:
        mem_mb=memory_mb(1500),
        runtime=10,
    log:
        f"logs/tabulate_pose2mesh/{P2M_DATASET}.log",
    benchmark:
        f"benchmarks/tabulate_pose2mesh/{P2M_DATASET}.tsv"
    conda:
        "../../envs/pose2mesh.yaml"
    script:
        "../../scripts/tabulate_pose2mesh.py"

# DFAUST registrations (downloaded, or procedural demo bodies) to one mesh file per frame.


if DEMO:

    rule make_demo_sequence:
        output:
            registrations=demo_sequence_path("registrations"),
            joints=demo_sequence_path("joints"),
        params:
            sex=demo_sex,
            motion=demo_motion,
            n_frames=config["demo_bodies"]["n_frames"],
            fps=config["demo_bodies"]["fps"],
            seed=config["seed"],
            model_version=demo_model_version(),
        threads: 1
        resources:
            # about 130 MB peak; memory doubles on a retry after an out-of-memory kill
            mem_mb=memory_mb(1000),
            runtime=10,  # minutes; one demo sequence takes about a second
        log:
            f"logs/make_demo_sequence/{DATASET}/{{sequence}}.log",
        benchmark:
            f"benchmarks/make_demo_sequence/{DATASET}/{{sequence}}.tsv"
        conda:
            "../../envs/bodies.yaml"
        script:
            "../../scripts/make_demo_sequence.py"

    rule make_demo_bodies:
        input:
            registrations=expand(
                rules.make_demo_sequence.output.registrations, sequence=DEMO_SEQUENCES
            ),
            joints=expand(rules.make_demo_sequence.output.joints, sequence=DEMO_SEQUENCES),
        output:
            m=registrations_path("m"),
            f=registrations_path("f"),
            joints=f"results/demo_bodies/{DATASET}/joints.hdf5",
        threads: 1
        resources:
            # holds one demo sequence at a time while copying it into the assembled files
            mem_mb=memory_mb(1000),
            runtime=10,
        log:
            f"logs/make_demo_bodies/{DATASET}.log",
        benchmark:
            f"benchmarks/make_demo_bodies/{DATASET}.tsv"
        conda:
            "../../envs/bodies.yaml"
        script:
            "../../scripts/make_demo_bodies.py"


rule extract_meshes:
    input:
        registrations=registrations_of,
    output:
        meshes=directory(f"results/meshes/{DATASET}/{{sequence}}"),
    params:
        source=source_of,
        frame_stride=config["meshes"]["frame_stride"],
        drop_first=config["meshes"]["drop_first"],
        max_frames=config["meshes"]["max_frames"],
        repair_holes=config["meshes"]["repair_holes"],
    threads: 1
    resources:
        # one DFAUST sequence as float32 (6890 x 3 x ~1000 frames: under 100 MB) plus one mesh
        mem_mb=memory_mb(1000),
        runtime=30,  # minutes; writing ~1000 PLY files, with hole repair if enabled
    log:
        f"logs/extract_meshes/{DATASET}/{{sequence}}.log",
    benchmark:
        f"benchmarks/extract_meshes/{DATASET}/{{sequence}}.tsv"
    conda:
        "../../envs/meshes.yaml"
    script:
        "../../scripts/extract_meshes.py"

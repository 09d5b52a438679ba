# Mask R-CNN on the photos (seed 002 chapter 3): optional demo training, sharded inference.


scattergather:
    segment=config["segmentation"]["shards"],


SEGMENT_SHARD = f"results/segments/{CARS}/r{{replicate}}/shards/{{scatteritem}}.json"


if segmenter_train_set() is not None:

    rule train_segmenter:
        input:
            train_set=segmenter_train_set(),
        output:
            model=f"results/segmenter/{CARS}/r{{replicate}}/model.pt",
            losses=f"results/segmenter/{CARS}/r{{replicate}}/losses.csv",
        params:
            # not an output: Snakemake would delete it on failure, and resuming needs it
            checkpoint_dir=f"results/checkpoints/segmenter/{CARS}/r{{replicate}}",
            training=config["segmentation"]["train"],
            device=config["segmentation"]["device"],
            seed=training_seed("segmentation"),
        # One thread: a two-thread job waits for two free cores at once, and with the other
        # branches' one-thread jobs always ready it waited 6 of the default DAG's 16 minutes
        # (2026-12-02); its second thread also mostly spin-waits beside a busy core. Give more
        # threads (--set-threads train_segmenter=N) on a node with cores to spare.
        threads: 1
        # First among the jobs ready to run: it heads the longest chain (segments, cut-outs, style
        # transfer, stylized renders, shape and pose), and every job of that chain has a priority.
        priority: 10
        resources:
            # 1.8 GB peak measured (demo); images in a batch dominate
            mem_mb=memory_mb(3000),
            runtime=60,  # minutes; the demo default takes about 6 on one CPU core
            # Mask R-CNN training: the one job that needs a GPU at scale; `device: auto` falls back
            # to the CPU, and a local run without --resources gpu=N is not limited by it.
            gpu=1,
            nodes=1,  # several GPUs on one node: --set-resources train_segmenter:gpu=N runs DDP
            # GPU memory the real config needs, estimated from the CPU peak, not measured on a GPU
            # (none was available): the real configs do not train it (COCO weights); one step of the
            # demo model peaked at 1.8 GB resident on the CPU (benchmarks/train_step.py --size real,
            # 2026-12-07).
            gpu_mem_mb=2000,  # estimated
        log:
            f"logs/train_segmenter/{CARS}/r{{replicate}}.log",
        benchmark:
            f"benchmarks/train_segmenter/{CARS}/r{{replicate}}.tsv"
        conda:
            "../../envs/segment.yaml"
        script:
            "../../scripts/train_segmenter.py"


rule segment:
    input:
        photos=photos_root(),
        weights=segmenter_weights(),
    output:
        shard=SEGMENT_SHARD,
    params:
        backend=config["segmentation"]["backend"],
        arch=segmenter_arch(),
        detectron2_config=config["segmentation"]["detectron2_config"],
        score_threshold=config["segmentation"]["score_threshold"],
        nms_threshold=config["segmentation"]["nms_threshold"],
        mask_threshold=config["segmentation"]["mask_threshold"],
        device=config["segmentation"]["device"],
    priority: 10  # on the longest chain (segmenter, cut-outs, style transfer, shape and pose)
    threads: 1
    resources:
        mem_mb=memory_mb(3000),  # 815 MB measured per demo shard
        runtime=120,  # minutes; 7 s per demo shard on a CPU, a GPU shard of real photos is minutes
        gpu=1,  # Mask R-CNN inference runs on the device (`device: auto`, CPU where none)
    log:
        f"logs/segment/{CARS}/r{{replicate}}/{{scatteritem}}.log",
    benchmark:
        f"benchmarks/segment/{CARS}/r{{replicate}}/{{scatteritem}}.tsv"
    conda:
        "../../envs/segment.yaml"
    script:
        "../../scripts/segment.py"


rule gather_segments:
    input:
        photos=photos_root(),
        shards=gather.segment(SEGMENT_SHARD, allow_missing=True),
    output:
        instances=f"results/segments/{CARS}/r{{replicate}}/instances.json",
    priority: 10  # on the longest chain (segmenter, cut-outs, style transfer, shape and pose)
    threads: 1
    resources:
        # every shard's instances in memory at once: 686 MB measured on the demo (masks as RLE)
        mem_mb=memory_mb(1000),
        runtime=10,  # minutes; 3.5 s measured
    log:
        f"logs/gather_segments/{CARS}/r{{replicate}}.log",
    benchmark:
        f"benchmarks/gather_segments/{CARS}/r{{replicate}}.tsv"
    conda:
        "../../envs/segment.yaml"
    script:
        "../../scripts/gather_segments.py"

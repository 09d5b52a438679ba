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
        threads: 2
        # First among the jobs ready to run: it heads the longest chain (segments, cut-outs, style
        # transfer, stylized renders, shape and pose) and takes both cores, so the one-thread jobs
        # of the other branches fill the cores after it rather than leaving one idle beside it.
        priority: 10
        resources:
            # 1.8 GB peak measured on two CPU cores (demo); images in a batch dominate
            mem_mb=memory_mb(3000),
            runtime=60,  # minutes; the demo default takes about 5 on two CPU cores
            # Mask R-CNN training: the one job that needs a GPU at scale; `device: auto` falls back
            # to the CPU, and a local run without --resources gpu=N is not limited by it.
            gpu=1,
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

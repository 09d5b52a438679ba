# Image branch inputs (seed 002): synthetic renders (DPC layout) and photos (Stanford Cars layout).

if CARS_DEMO:

    rule make_demo_cars:
        output:
            synthetic=directory(f"{DEMO_CARS_DIR}/synthetic"),
            photos=directory(f"{DEMO_CARS_DIR}/photos"),
            photos_truth=f"{DEMO_CARS_DIR}/photos_truth.json",
            segmenter_train=directory(f"{DEMO_CARS_DIR}/segmenter_train"),
        params:
            seed=config["seed"],
            synthetic_options=config["demo_cars"]["synthetic"],
            photo_options=config["demo_cars"]["photos"],
            shape=config["demo_cars"]["shape"],
        # One process rendering on the CPU (EGL): 19 s and 262 MB measured for the demo set.
        threads: 1
        priority: 20  # the first job: the segmenter, head of the longest chain, needs its photos
        resources:
            mem_mb=memory_mb(1000),
            runtime=30,
        log:
            f"logs/make_demo_cars/{CARS}.log",
        benchmark:
            f"benchmarks/make_demo_cars/{CARS}.tsv"
        conda:
            "../../envs/cars.yaml"
        script:
            "../../scripts/make_demo_cars.py"

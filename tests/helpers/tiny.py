"""Toy sizes of the systems added beside the two branches (pose transfer, Pose2Mesh, the Liquid
Warping GAN), shared by each system's own workflow test and by the whole-workflow toy run of
test_workflow_shape_pose.py, so that no workflow test trains them at config.yaml's demo size."""

POSE_TRANSFER = {
    "dataset": "tiny_pt",
    "demo": {"identities": {"train": 2, "val": 2, "test": 2}, "seen_poses": 3, "unseen_poses": 1,
             "motions": ["knees", "punching"], "val_pairs": 2, "test_pairs": 3},
    "defaults": {"width": 16},
    # two of the three variants (config.yaml's third, spadabin, is left out: a job less per
    # list and stage, and the replan tests need only two); a run replaces the variants whole
    "variants": {"original": {}, "maxpool": {"pose_pooling": "max", "first_block_normalized": False}},
    "training": {"steps": 4, "batch_size": 2, "checkpoint_every": 2, "validate_every": 2,
                 "log_every": 2, "val_pairs": 2},
    "figure": {"n_pairs": 2, "size": 48},
}

POSE2MESH = {
    "dataset": "tiny_p2m",
    "demo": {"motions": ["punching", "knees"], "frames": 6, "fps": 4, "subactions": 1},
    "split": {"subsample": {"train": 1, "val": 2, "test": 2}},
    "model": {"posenet_hidden": 32, "meshnet_width": 16},
    "posenet": {"training": {"steps": 12, "batch_size": 16, "lr_steps": [1],
                             "checkpoint_every": 6, "validate_every": 6, "log_every": 6}},
    "meshnet": {"training": {"steps": 8, "batch_size": 8, "lr_steps": [1],
                             "checkpoint_every": 4, "validate_every": 4, "log_every": 4}},
    "figure_frames": 2,
    "run": ["rmsprop", "adam"],  # config.yaml's third experiment (faithful) adds only time here
}

LWGAN = {
    "demo": {"actors": 3, "val_actors": [3], "frames": 4, "image_size": 32, "fps": 8.0,
             "motions": ["punching"], "scale": 1.0},
    "model": {"image_size": 32, "conv_dim": 4, "n_blocks": 1, "n_down": 3, "ndf": 4,
              "d_layers": 2, "crop_kernel": 3, "background_kernel": 3},
    "training": {"steps": 4, "batch_size": 2, "checkpoint_every": 2, "validate_every": 2,
                 "log_every": 2, "record_every": 1, "keep_last": 1, "tensorboard": False,
                 "val_pairs_per_video": 2},
    "evaluation": {"window": 2, "cross_reference": None, "known_background": True},
    "run": ["baseline", "gp10"],
}

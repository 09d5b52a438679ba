"""The demo pose-transfer set: coarse demo bodies in the authors' layout, with exact ground truth.

Identities 0 .. n-1 come from `sample_identity` (even indices male, odd female), each from its own
stream `derive_rng(seed, "pose_transfer", "identity", i)`; they are split in that order into
training, validation and test identities. Pose p is one frame of the demo motions (motion
p mod len(motions), at a time and with a personal variation drawn from `derive_rng(seed,
"pose_transfer", "pose", p)`), with the root's rotation and translation zeroed: no global
rotation, as the authors' set. Poses 0 .. seen-1 are the seen (training) poses, the next `unseen`
ones are never trained on. The mesh of identity i in pose p is
`Body(identity_i, load_coarse_template()).pose(euler_p, 0)`, so the ground truth of "identity i
in pose p" is exact, and every mesh shares the coarse template's topology.

Written: `id{i}_{p}.obj` for training and validation identities in the seen poses and for test
identities in every pose; the validation list and the two test lists (seen, unseen poses), one
`identity pose ground_truth` line per triple. A triple takes its identity mesh from one held-out
identity (in a seen pose) and its pose mesh from another held-out identity, so no mesh of a test
triple was trained on.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from shapepose.bodies import Body, sample_identity, trajectory
from shapepose.bodies.coarse import load_coarse_template
from shapepose.bodies.motions import MOTIONS, sample_variation
from shapepose.io import atomic_dir, atomic_file
from shapepose.pose_transfer.meshes import mesh_name, write_obj
from shapepose.seeding import derive_rng

log = logging.getLogger(__name__)

STAGE = "pose_transfer"
SEXES = ("m", "f")


def demo_identity(seed: int, index: int):
    """Identity `index` of the demo set (sex alternating m, f)."""
    return sample_identity(derive_rng(seed, STAGE, "identity", index), SEXES[index % 2])


def demo_pose(seed: int, index: int, motions: list[str]) -> np.ndarray:
    """Euler angles (1, J, 3) of pose `index`: a frame of motion index mod len(motions), root
    rotation zeroed (the translation is zero wherever the pose is used)."""
    motion = motions[index % len(motions)]
    rng = derive_rng(seed, STAGE, "pose", index)
    period = 1.0 / MOTIONS[motion].frequency
    time = rng.uniform(0.0, period)
    euler, _ = trajectory(motion, np.array([time]), sample_variation(rng))
    euler = euler.copy()
    euler[:, 0] = 0.0  # joint 0 is the root: no global rotation
    return euler


def posed(identity, euler: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (V, 3) of the coarse body of `identity` in pose `euler` (1, J, 3), and its faces."""
    body = Body(identity, load_coarse_template())
    vertices, _ = body.pose(euler, np.zeros((1, 3)))
    return vertices[0], body.faces


def split_identities(identities: dict) -> dict[str, list[int]]:
    """{"train", "val", "test"} -> identity indices, in that order from 0."""
    out, start = {}, 0
    for part in ("train", "val", "test"):
        out[part] = list(range(start, start + int(identities[part])))
        start += int(identities[part])
    return out


def pose_split(seen_poses: int, unseen_poses: int) -> dict[str, list[int]]:
    return {"seen": list(range(seen_poses)),
            "unseen": list(range(seen_poses, seen_poses + unseen_poses))}


def draw_triples(rng: np.random.Generator, identities: list[int], identity_poses: list[int],
                 target_poses: list[int], n: int) -> list[tuple[str, str, str]]:
    """n triples: identity a in pose q, identity b != a in pose p != q, ground truth a in p."""
    triples = []
    for _ in range(n):
        a, b = rng.choice(identities, size=2, replace=False)
        p = int(rng.choice(target_poses))
        q = int(rng.choice([x for x in identity_poses if x != p]))
        triples.append((mesh_name(int(a), q), mesh_name(int(b), p), mesh_name(int(a), p)))
    return triples


def _write_list(path, triples) -> None:
    with atomic_file(path) as tmp:
        tmp.write_text("".join(f"{a} {b} {c}\n" for a, b, c in triples))


def make_demo_pose_pairs(*, meshes: str | os.PathLike, val_list: str, seen_list: str,
                         unseen_list: str, seed: int, identities: dict, seen_poses: int,
                         unseen_poses: int, motions: list[str], val_pairs: int,
                         test_pairs: int) -> dict:
    """Write the meshes directory and the three lists (see the module docstring); returns counts."""
    unknown = [m for m in motions if m not in MOTIONS]
    if unknown:
        raise ValueError(f"unknown motions {unknown}; available: {', '.join(sorted(MOTIONS))}")
    for part, least in (("val", 2), ("test", 2), ("train", 1)):
        if int(identities[part]) < least:
            raise ValueError(f"pose_transfer.demo.identities.{part} must be at least {least}")
    if seen_poses < 2 or unseen_poses < 1:
        raise ValueError("the demo needs at least 2 seen poses and 1 unseen pose")
    ids = split_identities(identities)
    poses = pose_split(seen_poses, unseen_poses)
    euler = {p: demo_pose(seed, p, motions) for p in poses["seen"] + poses["unseen"]}
    written = 0
    with atomic_dir(meshes) as tmp:
        for part in ("train", "val", "test"):
            wanted = poses["seen"] + (poses["unseen"] if part == "test" else [])
            for i in ids[part]:
                identity = demo_identity(seed, i)
                for p in wanted:
                    vertices, faces = posed(identity, euler[p])
                    write_obj(Path(tmp) / mesh_name(i, p), vertices, faces)
                    written += 1
    rng = derive_rng(seed, STAGE, "pairs")
    _write_list(val_list, draw_triples(rng, ids["val"], poses["seen"], poses["seen"], val_pairs))
    _write_list(seen_list, draw_triples(rng, ids["test"], poses["seen"], poses["seen"], test_pairs))
    _write_list(unseen_list, draw_triples(rng, ids["test"], poses["seen"], poses["unseen"], test_pairs))
    log.info("demo pose pairs: %d meshes (%d train, %d val, %d test identities; %d seen, %d unseen "
             "poses), %d validation and 2 x %d test triples", written, len(ids["train"]),
             len(ids["val"]), len(ids["test"]), seen_poses, unseen_poses, val_pairs, test_pairs)
    return {"meshes": written, **{k: len(v) for k, v in ids.items()}}

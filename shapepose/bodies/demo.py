"""Procedural demo bodies written exactly as DFAUST registrations, plus a joints side file.

Each sequence is first written on its own (`make_demo_sequence`, the rule's entry, through
`write_demo_sequence`): a registrations file in DFAUST's layout holding `faces` and that one
`{subject}_{sequence}` dataset, and a joints file. The workflow extracts meshes from these, so a
change to one sequence reruns only that sequence's jobs. `make_demo_bodies` then merges them into `registrations_{m,f}.hdf5` exactly as DFAUST
ships them (`faces` (F, 3) int32 and one (V, 3, T) float32 dataset per `{subject}_{sequence}`)
and one joints file with what the pose models need (world joints, local axis-angle pose, root
translation, identity factors, rest joints). `write_demo_bodies` does both steps in one call.
Every random draw comes from `seed`, the subject and the sequence, so adding a subject or a
sequence leaves the others unchanged, and the same arguments give byte-identical files.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import h5py
import numpy as np
from tqdm import tqdm

from shapepose.bodies.model import SEXES, Body, Identity, sample_identity
from shapepose.bodies.motions import MOTIONS, sample_variation, trajectory
from shapepose.bodies.skeleton import JOINT_NAMES, PARENTS, euler_to_axis_angle
from shapepose.bodies.template import load_template
from shapepose.dfaust import FACES_KEY
from shapepose.io import atomic_file
from shapepose.seeding import derive_rng

MODEL_VERSION = "2"  # bump whenever a change in shapepose/bodies alters the generated data
GENERATOR = "shapepose demo bodies"
_FRAMES_PER_CHUNK = 64  # posing memory grows with frames x vertices; pose long sequences in chunks

__all__ = ["MOTIONS", "demo_sequence", "example_mesh", "make_demo_bodies", "make_demo_sequence",
           "write_demo_bodies", "write_demo_sequence"]


def subject_identity(seed: int, subject: str, sex: str) -> Identity:
    """The identity of demo subject `subject` (e.g. '50002') of sex 'm' or 'f'."""
    return sample_identity(derive_rng(seed, "identity", subject, sex), sex)


def demo_sequence(*, seed: int, subject: str, sex: str, motion: str, n_frames: int,
                  fps: float) -> dict[str, np.ndarray]:
    """One demo sequence on its own, exactly as `write_demo_bodies` writes it (see `perform`)."""
    body = Body(subject_identity(seed, subject, sex))
    return perform(body, motion, int(n_frames), fps, derive_rng(seed, "motion", subject, motion))


def _check_arguments(subjects: dict[str, str], sequences: list[str], n_frames: int,
                     fps: float) -> None:
    for subject, sex in subjects.items():
        if sex not in SEXES:
            raise ValueError(f"subject {subject!r}: sex must be one of {SEXES}, got {sex!r}")
        if not subject or "_" in subject or "/" in subject:
            raise ValueError(f"subject id {subject!r} must be non-empty, without '_' or '/'")
    unknown = [s for s in sequences if s not in MOTIONS]
    if unknown:
        raise ValueError(f"unknown sequences {unknown}; available: {', '.join(sorted(MOTIONS))}")
    if len(set(sequences)) != len(sequences):
        raise ValueError(f"sequences are repeated: {sequences}")
    if int(n_frames) < 1:
        raise ValueError(f"n_frames must be at least 1, got {n_frames}")
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")


def perform(body: Body, motion: str, n_frames: int, fps: float,
            rng: np.random.Generator) -> dict[str, np.ndarray]:
    """One subject performing one motion, in the files' (..., 3, T) layout.

    Returns float32 arrays: vertices (V, 3, T), joints (J, 3, T) world positions, pose (J, 3, T)
    local axis-angle, translation (3, T).
    """
    times = np.arange(n_frames) / float(fps)
    euler, translation = trajectory(motion, times, sample_variation(rng))
    vertices = np.empty((len(body.rest_vertices), 3, n_frames), dtype=np.float32)
    joints = np.empty((len(JOINT_NAMES), 3, n_frames), dtype=np.float32)
    for t0 in range(0, n_frames, _FRAMES_PER_CHUNK):
        chunk = slice(t0, t0 + _FRAMES_PER_CHUNK)
        v, j = body.pose(euler[chunk], translation[chunk])
        vertices[:, :, chunk] = v.transpose(1, 2, 0)
        joints[:, :, chunk] = j.transpose(1, 2, 0)
    pose = euler_to_axis_angle(euler).transpose(1, 2, 0).astype(np.float32)
    return {"vertices": vertices, "joints": joints, "pose": pose,
            "translation": translation.T.astype(np.float32)}


def _dataset(group: h5py.Group, name: str, data: np.ndarray) -> None:
    # no timestamps in the object headers, so equal arguments give equal bytes
    group.create_dataset(name, data=data, track_times=False)


def _write_header(fh: h5py.File, seed: int, fps: float) -> None:
    fh.attrs.update(generator=GENERATOR, model_version=MODEL_VERSION, seed=int(seed),
                    fps=float(fps))


def _write_subject(side: h5py.File, subject: str, body: Body) -> None:
    """Identity factors and rest joints of one subject into the joints file."""
    identity = side["identity"].create_group(subject)
    identity.attrs["sex"] = body.identity.sex
    _dataset(identity, "length", body.identity.length.astype(np.float32))
    _dataset(identity, "thickness", body.identity.thickness.astype(np.float32))
    _dataset(side["rest_joints"], subject, body.rest_joints.astype(np.float32))


def _write_joints_header(side: h5py.File) -> None:
    side.attrs.update(joint_names=np.array(JOINT_NAMES, dtype="S"), parents=PARENTS.astype(np.int64))
    for name in ("joints", "pose", "translation", "identity", "rest_joints"):
        side.create_group(name)


def write_demo_sequence(registrations: str | os.PathLike, joints: str | os.PathLike, *,
                        subject: str, sex: str, motion: str, n_frames: int, fps: float,
                        seed: int) -> None:
    """One subject performing one motion: a one-sequence DFAUST-layout file and its joints file.

    The registrations file carries the subject's sex as an attribute, which
    `make_demo_bodies` uses to choose between the `m` and `f` registrations files.
    """
    _check_arguments({subject: sex}, [motion], n_frames, fps)
    key = f"{subject}_{motion}"
    body = Body(subject_identity(seed, subject, sex))
    out = perform(body, motion, int(n_frames), fps, derive_rng(seed, "motion", subject, motion))
    with atomic_file(registrations) as tmp_reg, atomic_file(joints) as tmp_joints:
        with h5py.File(tmp_reg, "w") as reg, h5py.File(tmp_joints, "w") as side:
            for fh in (reg, side):
                _write_header(fh, seed, fps)
            reg.attrs["sex"] = sex
            _dataset(reg, FACES_KEY, body.faces.astype(np.int32))
            _dataset(reg, key, out["vertices"])
            _write_joints_header(side)
            _write_subject(side, subject, body)
            for name in ("joints", "pose", "translation"):
                _dataset(side[name], key, out[name])


def make_demo_sequence(*, registrations: str | os.PathLike, joints: str | os.PathLike,
                       sequence: str, sex: str, motion: str, n_frames: int, fps: float, seed: int,
                       model_version: str) -> None:
    """Demo sequence `{subject}_{motion}` as its two files (`write_demo_sequence`).

    model_version: the `MODEL_VERSION` the workflow's plan was made with. Another one means this
    code would write data the plan did not expect (its outputs look up to date but are not), so
    the job stops and asks for a rerun.
    """
    if model_version != MODEL_VERSION:
        raise RuntimeError("the DAG was built with another shapepose.bodies version; rerun snakemake")
    subject, named_motion = sequence.split("_", 1)
    if named_motion != motion:
        raise ValueError(f"sequence {sequence!r} does not name motion {motion!r}")
    write_demo_sequence(registrations, joints, subject=subject, sex=sex, motion=motion,
                        n_frames=n_frames, fps=fps, seed=seed)


def _copy(source: h5py.Group, target: h5py.Group, name: str) -> None:
    item = source[name]
    if isinstance(item, h5py.Group):
        group = target.create_group(name)
        group.attrs.update(item.attrs)
        for child in sorted(item):
            _copy(item, group, child)
    else:
        _dataset(target, name, item[()])


def make_demo_bodies(*, registrations: list[str | os.PathLike], joints: list[str | os.PathLike],
                     out_m: str | os.PathLike, out_f: str | os.PathLike,
                     out_joints: str | os.PathLike) -> None:
    """Merge the per-sequence files of `write_demo_sequence` into DFAUST's two files and one joints file.

    registrations[i] and joints[i] are the two files of one sequence. The result does not depend
    on the order of the sequences; all must share seed, fps and model version.
    """
    if len(registrations) != len(joints):
        raise ValueError(f"{len(registrations)} registrations files but {len(joints)} joints files")
    opened = []
    with contextlib.ExitStack() as stack:
        for reg_path, joints_path in zip(registrations, joints):
            reg = stack.enter_context(h5py.File(reg_path, "r"))
            side = stack.enter_context(h5py.File(joints_path, "r"))
            keys = [k for k in reg if k != FACES_KEY]
            if len(keys) != 1 or reg.attrs.get("generator") != GENERATOR:
                raise ValueError(f"{reg_path}: not a one-sequence demo file from write_demo_sequence")
            opened.append((keys[0], reg, side))
        opened.sort(key=lambda item: item[0])
        headers = {(float(r.attrs["seed"]), float(r.attrs["fps"]), str(r.attrs["model_version"]))
                   for _, r, _ in opened}
        if len(headers) > 1:
            raise ValueError(f"demo sequences disagree on seed, fps or model version: {headers}")
        seed, fps = int(opened[0][1].attrs["seed"]), float(opened[0][1].attrs["fps"])
        faces = load_template().faces.astype(np.int32)
        tmp = {sex: stack.enter_context(atomic_file(path))
               for sex, path in (("m", out_m), ("f", out_f))}
        tmp_joints = stack.enter_context(atomic_file(out_joints))
        with contextlib.ExitStack() as files:
            out = {sex: files.enter_context(h5py.File(p, "w")) for sex, p in tmp.items()}
            out_side = files.enter_context(h5py.File(tmp_joints, "w"))
            for fh in (*out.values(), out_side):
                _write_header(fh, seed, fps)
            for fh in out.values():
                _dataset(fh, FACES_KEY, faces)
            _write_joints_header(out_side)
            for key, reg, side in tqdm(opened, desc="assemble demo bodies", unit="sequence"):
                if not np.array_equal(reg[FACES_KEY][()], faces):
                    raise ValueError(f"{reg.filename}: faces differ from the template's")
                _dataset(out[str(reg.attrs["sex"])], key, reg[key][()])
                for name in ("joints", "pose", "translation"):
                    _dataset(out_side[name], key, side[name][key][()])
                subject = key.split("_", 1)[0]
                for name in ("identity", "rest_joints"):
                    if subject not in out_side[name]:
                        _copy(side[name], out_side[name], subject)


def write_demo_bodies(registrations_m: str, registrations_f: str, joints: str, *,
                     subjects: dict[str, str], sequences: list[str], n_frames: int, fps: float,
                     seed: int) -> None:
    """Every subject performing every sequence, straight to the three assembled files.

    subjects: DFAUST-style ids -> sex ('m' or 'f'); sequences: names from `MOTIONS`. The
    workflow runs the two steps as separate jobs; this is the one-call form for scripts and tests.
    """
    _check_arguments(subjects, sequences, n_frames, fps)
    Path(joints).parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".demo-bodies-", dir=Path(joints).parent) as tmp:
        parts = []
        for subject in sorted(subjects):
            for motion in sorted(sequences):
                key = f"{subject}_{motion}"
                part = (f"{tmp}/{key}.hdf5", f"{tmp}/{key}.joints.hdf5")
                write_demo_sequence(*part, subject=subject, sex=subjects[subject], motion=motion,
                                    n_frames=n_frames, fps=fps, seed=seed)
                parts.append(part)
        make_demo_bodies(registrations=[reg for reg, _ in parts], joints=[j for _, j in parts],
                         out_m=registrations_m, out_f=registrations_f, out_joints=joints)


def example_mesh(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """One posed demo frame: vertices (V, 3) float32, faces (F, 3) int64 (for benchmarks/tests)."""
    rng = derive_rng(seed, "example")
    sex = SEXES[int(rng.integers(2))]
    body = Body(sample_identity(rng, sex))
    motion = sorted(MOTIONS)[int(rng.integers(len(MOTIONS)))]
    euler, translation = trajectory(motion, np.array([rng.uniform(0.0, 2.0)]),
                                    sample_variation(rng))
    vertices, _ = body.pose(euler, translation)
    return vertices[0].astype(np.float32), body.faces.astype(np.int64)

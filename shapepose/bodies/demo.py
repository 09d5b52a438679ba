"""Procedural demo bodies written exactly as DFAUST registrations, plus a joints side file.

`registrations_{m,f}.hdf5` hold a `faces` dataset (F, 3) int32 and one (V, 3, T) float32 dataset
per `{subject}_{sequence}`, as DFAUST ships them; the joints file holds what the pose models need
(world joints, local axis-angle pose, root translation, identity factors, rest joints).
Every random draw comes from `seed`, the subject and the sequence, so adding a subject or a
sequence leaves the others unchanged, and the same arguments give byte-identical files.
"""

from __future__ import annotations

import contextlib
import zlib

import h5py
import numpy as np
from tqdm import tqdm

from shapepose.bodies.model import SEXES, Body, Identity, sample_identity
from shapepose.bodies.motions import MOTIONS, sample_variation, trajectory
from shapepose.bodies.skeleton import JOINT_NAMES, PARENTS, euler_to_axis_angle
from shapepose.bodies.template import load_template
from shapepose.dfaust import FACES_KEY
from shapepose.io import atomic_file
from shapepose.provenance import spec_digest, stamp_demo_digests

MODEL_VERSION = "1"  # bump whenever a change in shapepose/bodies alters the generated data
GENERATOR = "shapepose demo bodies"
_FRAMES_PER_CHUNK = 64  # posing memory grows with frames x vertices; pose long sequences in chunks

__all__ = ["MOTIONS", "demo_sequence", "example_mesh", "make_demo_bodies", "sequence_spec"]


def _rng(seed: int, *labels: str) -> np.random.Generator:
    """A generator for one purpose (e.g. 'identity', subject), independent of every other one."""
    return np.random.default_rng([seed, *(zlib.crc32(label.encode()) for label in labels)])


def subject_identity(seed: int, subject: str, sex: str) -> Identity:
    """The identity of demo subject `subject` (e.g. '50002') of sex 'm' or 'f'."""
    return sample_identity(_rng(seed, "identity", subject, sex), sex)


def sequence_spec(*, subject: str, sex: str, motion: str, n_frames: int, fps: float,
                  seed: int) -> dict:
    """Everything that determines one demo sequence's vertices, as a JSON-able dict.

    The workflow digests it to decide whether a stored sequence is up to date; it is cheap (no
    template is built).
    """
    return {"generator": GENERATOR, "model_version": MODEL_VERSION, "subject": str(subject),
            "sex": sex, "motion": motion, "n_frames": int(n_frames), "fps": float(fps),
            "seed": int(seed)}


def demo_sequence(*, seed: int, subject: str, sex: str, motion: str, n_frames: int,
                  fps: float) -> dict[str, np.ndarray]:
    """One demo sequence on its own, exactly as `make_demo_bodies` writes it (see `perform`)."""
    body = Body(subject_identity(seed, subject, sex))
    return perform(body, motion, int(n_frames), fps, _rng(seed, "motion", subject, motion))


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


def make_demo_bodies(registrations_m: str, registrations_f: str, joints: str, *,
                     subjects: dict[str, str], sequences: list[str], n_frames: int, fps: float,
                     seed: int) -> None:
    """Generate every subject performing every sequence and write the three files atomically.

    subjects: DFAUST-style ids -> sex ('m' or 'f'); sequences: names from `MOTIONS`.
    """
    _check_arguments(subjects, sequences, n_frames, fps)
    n_frames = int(n_frames)
    order = sorted(subjects)  # a canonical order: the bytes do not depend on dict/list order
    bodies = {s: Body(subject_identity(seed, s, subjects[s])) for s in order}
    specs = {"m": {}, "f": {}}
    with contextlib.ExitStack() as stack:
        tmp = {sex: stack.enter_context(atomic_file(path))
               for sex, path in (("m", registrations_m), ("f", registrations_f))}
        tmp_joints = stack.enter_context(atomic_file(joints))
        with contextlib.ExitStack() as files:
            reg = {sex: files.enter_context(h5py.File(p, "w")) for sex, p in tmp.items()}
            side = files.enter_context(h5py.File(tmp_joints, "w"))
            for fh in (*reg.values(), side):
                _write_header(fh, seed, fps)
            for fh in reg.values():
                _dataset(fh, FACES_KEY, load_template().faces.astype(np.int32))
            side.attrs.update(joint_names=np.array(JOINT_NAMES, dtype="S"),
                              parents=PARENTS.astype(np.int64))
            for name in ("joints", "pose", "translation", "identity", "rest_joints"):
                side.create_group(name)
            for s in order:
                _write_subject(side, s, bodies[s])
            pairs = [(s, q) for s in order for q in sorted(sequences)]
            for s, q in tqdm(pairs, desc="demo bodies", unit="sequence"):
                key = f"{s}_{q}"
                out = perform(bodies[s], q, n_frames, fps, _rng(seed, "motion", s, q))
                _dataset(reg[subjects[s]], key, out["vertices"])
                for name in ("joints", "pose", "translation"):
                    _dataset(side[name], key, out[name])
                specs[subjects[s]][key] = spec_digest(sequence_spec(
                    subject=s, sex=subjects[s], motion=q, n_frames=n_frames, fps=fps, seed=seed))
        for sex in ("m", "f"):  # after closing: the digests are read back from the files
            stamp_demo_digests(tmp[sex], specs[sex])


def example_mesh(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """One posed demo frame: vertices (V, 3) float32, faces (F, 3) int64 (for benchmarks/tests)."""
    rng = _rng(seed, "example")
    sex = SEXES[int(rng.integers(2))]
    body = Body(sample_identity(rng, sex))
    motion = sorted(MOTIONS)[int(rng.integers(len(MOTIONS)))]
    euler, translation = trajectory(motion, np.array([rng.uniform(0.0, 2.0)]),
                                    sample_variation(rng))
    vertices, _ = body.pose(euler, translation)
    return vertices[0].astype(np.float32), body.faces.astype(np.int64)

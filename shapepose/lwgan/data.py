"""iPER as the Liquid Warping GAN code reads it, and the procedural demo written in that layout.

Layout (root = the dataset folder):
    images/{actor:03d}/{cloth}/{action}/{k}.jpg      frames of one video ("001/1/2")
    smpls/{actor:03d}/{cloth}/{action}/pose_shape.pkl
        cams (N, 3) weak-perspective [s, tx, ty]; pose (N, P); shape (N, B) or (B,);
        body_model: which body model pose and shape belong to (ours: DEMO_BODY_MODEL)
    smpls/{actor:03d}/{cloth}/{action}/kps.pkl       kps (N, K, 2) joints in [-1, 1], y down
    train.txt, val.txt                               one video per line

Frames are ordered by their numeric name (the original sorts the file names as strings, which puts
"10.jpg" before "2.jpg" for any video over ten frames; iPER's zero-padded names sort the same
either way). The demo's actors are our body identities (coarse template) wearing procedural
"cloths" (per-vertex albedo: shirt, trousers, skin, shoes and a chest marker that makes front and
back differ), Lambert-lit by a light fixed to the camera, over a procedural background that
stays fixed within a video; action 1 is the A-pose turn (one full turn about the vertical),
action 2 one of our motions.
"""

from __future__ import annotations

import pickle
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.spatial.transform import Rotation

from shapepose.bodies import JOINT_NAMES, Body, sample_identity, trajectory
from shapepose.bodies.coarse import load_coarse_template
from shapepose.bodies.model import Identity
from shapepose.bodies.motions import sample_variation
from shapepose.bodies.skeleton import clip_to_limits, euler_to_axis_angle
from shapepose.errors import InputError
from shapepose.io import atomic_dir
from shapepose.seeding import derive_rng

DEMO_BODY_MODEL = "shapepose-coarse"  # pose: (N, 3 J) local axis-angle; shape: (2 J,) length, thickness
FIT_KEYS = ("cams", "pose", "shape")
JPEG_QUALITY = 95
STAGE = "lwgan"

# cloth regions by the bone a vertex follows most (bone j ends at joint j)
_SKIN = {"neck", "head", "head_top", "hand_tip"}
_SHIRT = {"spine", "chest", "collar", "shoulder", "elbow", "wrist"}
_SHOES = {"toe"}


def video_name(actor: int, cloth: int, action: int) -> str:
    return f"{actor:03d}/{cloth}/{action}"


# ----------------------------------------------------------------------------------- readers

def read_split(root: str | Path, name: str) -> list[str]:
    """Video names of `train.txt` / `val.txt` (blank lines skipped)."""
    path = Path(root) / name
    if not path.is_file():
        raise InputError(path, "split file not found")
    videos = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if not videos:
        raise InputError(path, "split file lists no video")
    return videos


def frame_paths(folder: Path) -> list[Path]:
    """The frames of a video folder in numeric order of their names."""
    paths = [p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png")]

    def key(p: Path):
        digits = re.findall(r"\d+", p.stem)
        return (int(digits[-1]) if digits else -1, p.name)

    return sorted(paths, key=key)


@dataclass(frozen=True)
class Fits:
    """One video's fits: cams (N, 3), pose (N, P), shape (N, B), body_model, extra keys."""

    path: Path
    cams: np.ndarray
    pose: np.ndarray
    shape: np.ndarray
    body_model: str
    sex: str | None


def read_fits(path: str | Path) -> Fits:
    """`pose_shape.pkl`, checked: every key present, one camera, pose and shape per frame."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "pose_shape.pkl not found")
    try:
        with open(path, "rb") as fh:
            data = pickle.load(fh, encoding="latin1")
    except Exception as err:  # corrupt or truncated pickle
        raise InputError(path, f"cannot be read as a pickle ({err})") from err
    if not isinstance(data, dict):
        raise InputError(path, f"holds a {type(data).__name__}, not a dict of fits")
    for key in FIT_KEYS:
        if key not in data:
            raise InputError(path, f"missing key (has {sorted(data)})", key=key)
    cams = np.asarray(data["cams"], dtype=np.float64)
    pose = np.asarray(data["pose"], dtype=np.float64)
    shape = np.asarray(data["shape"], dtype=np.float64)
    if cams.ndim != 2 or cams.shape[1] != 3:
        raise InputError(path, f"cams must be (N, 3) [s, tx, ty], got {cams.shape}", key="cams")
    if pose.ndim != 2 or len(pose) != len(cams):
        raise InputError(path, f"pose must be (N, P) with N = {len(cams)} cameras, got "
                               f"{pose.shape}", key="pose")
    if shape.ndim == 1:
        shape = np.tile(shape, (len(cams), 1))
    if shape.ndim != 2 or len(shape) != len(cams):
        raise InputError(path, f"shape must be (B,) or (N, B), got {shape.shape}", key="shape")
    for key, value in (("cams", cams), ("pose", pose), ("shape", shape)):
        if not np.all(np.isfinite(value)):
            raise InputError(path, "holds NaN or infinite values", key=key)
    if not np.all(cams[:, 0] > 0):
        raise InputError(path, "camera scale s must be > 0", key="cams")
    return Fits(path, cams, pose, shape, str(data.get("body_model", "smpl")), data.get("sex"))


@dataclass(frozen=True)
class Video:
    """One video of the layout: its name, frame files and fits (one per frame, checked)."""

    name: str
    frames: tuple[Path, ...]
    fits: Fits

    @property
    def actor(self) -> str:
        return self.name.split("/")[0]


def open_video(root: str | Path, name: str, images: str = "images", smpls: str = "smpls") -> Video:
    """The video `name` under `root`; InputError when its frames and fits do not match."""
    root = Path(root)
    folder = root / images / name
    if not folder.is_dir():
        raise InputError(folder, "frame folder not found")
    frames = tuple(frame_paths(folder))
    if not frames:
        raise InputError(folder, "frame folder holds no .jpg/.png frame")
    fits = read_fits(root / smpls / name / "pose_shape.pkl")
    if len(frames) != len(fits.cams):
        raise InputError(folder, f"{len(frames)} frames but {len(fits.cams)} fits in "
                                 f"{fits.path}")
    return Video(name, frames, fits)


def read_frame(path: Path, size: int) -> np.ndarray:
    """(size, size, 3) uint8 RGB; InputError for a non-square frame (the model needs square) or
    one that cannot be read. Square frames of another side are resized (bilinear)."""
    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            if im.width != im.height:
                raise InputError(path, f"frame is {im.width} x {im.height}; the Liquid Warping "
                                       "GAN needs square frames (crop them first)")
            if im.width != size:
                im = im.resize((size, size), Image.BILINEAR)
            return np.asarray(im, dtype=np.uint8).copy()
    except InputError:
        raise
    except Exception as err:
        raise InputError(path, f"cannot be read as an image ({err})") from err


def demo_body(fits: Fits) -> Body:
    """The body of a demo video's fits (its identity is shape[0]: length then thickness)."""
    if fits.body_model != DEMO_BODY_MODEL:
        raise InputError(fits.path, f"body model {fits.body_model!r}: only {DEMO_BODY_MODEL!r} "
                                    "is posed here (the SMPL path needs smpl_model and its "
                                    "renderer set up)", key="body_model")
    n = len(JOINT_NAMES)
    if fits.shape.shape[1] != 2 * n or fits.pose.shape[1] != 3 * n:
        raise InputError(fits.path, f"{DEMO_BODY_MODEL} needs pose (N, {3 * n}) and shape "
                                    f"(N, {2 * n}), got {fits.pose.shape} and {fits.shape.shape}")
    identity = Identity(fits.sex or "m", fits.shape[0, :n].copy(), fits.shape[0, n:].copy())
    return Body(identity, load_coarse_template())


def posed_vertices(body: Body, pose: np.ndarray) -> np.ndarray:
    """(N, V, 3) float64 vertices of the demo body at axis-angle poses (N, 3 J), root unmoved
    (the fits' cameras carry the translation, as weak-perspective fits do)."""
    n = len(JOINT_NAMES)
    rotations = Rotation.from_rotvec(pose.reshape(-1, 3)).as_matrix().reshape(len(pose), n, 3, 3)
    vertices, _ = body.pose_rotations(rotations, np.zeros((len(pose), 3)))
    return vertices


# ----------------------------------------------------------------------------------- demo

@dataclass(frozen=True)
class Cloth:
    """Albedo of the regions of one outfit, RGB in [0, 1]."""

    shirt: np.ndarray
    trousers: np.ndarray
    skin: np.ndarray
    shoes: np.ndarray
    marker: np.ndarray


def sample_cloth(rng: np.random.Generator) -> Cloth:
    skin = np.array([0.85, 0.65, 0.5]) * rng.uniform(0.6, 1.05)
    return Cloth(shirt=rng.uniform(0.1, 0.95, 3), trousers=rng.uniform(0.05, 0.7, 3),
                 skin=np.clip(skin, 0, 1), shoes=rng.uniform(0.0, 0.25, 3),
                 marker=rng.uniform(0.0, 1.0, 3))


def cloth_albedo(body: Body, cloth: Cloth) -> np.ndarray:
    """(V, 3) per-vertex albedo of `body` wearing `cloth`; the marker is a patch on the chest's
    front (rest pose: z in front of the chest, 1.15 m to 1.35 m high scaled by stature)."""
    bone = body.template.bone_weights.argmax(axis=1)
    names = [JOINT_NAMES[j][2:] if JOINT_NAMES[j][:2] in ("l_", "r_") else JOINT_NAMES[j]
             for j in bone]
    albedo = np.empty((len(bone), 3))
    for i, name in enumerate(names):
        if name in _SKIN:
            albedo[i] = cloth.skin
        elif name in _SHIRT:
            albedo[i] = cloth.shirt
        elif name in _SHOES:
            albedo[i] = cloth.shoes
        else:
            albedo[i] = cloth.trousers
    rest = body.template.vertices
    marker = (rest[:, 2] > 0.04) & (np.abs(rest[:, 0]) < 0.1) & (rest[:, 1] > 1.15) & (rest[:, 1] < 1.35)
    albedo[marker] = cloth.marker
    return albedo


def demo_background(rng: np.random.Generator, size: int) -> np.ndarray:
    """(size, size, 3) uint8: a vertical gradient with a floor band and a few rectangles."""
    top, bottom = rng.uniform(0.2, 0.9, 3), rng.uniform(0.1, 0.7, 3)
    t = np.linspace(0, 1, size)[:, None, None]
    image = np.broadcast_to((1 - t) * top + t * bottom, (size, size, 3)).copy()
    floor = int(size * rng.uniform(0.8, 0.9))
    image[floor:] = rng.uniform(0.1, 0.6, 3)
    for _ in range(3):
        x0, y0 = rng.integers(0, size - 8, 2)
        w, h = rng.integers(4, size // 3, 2)
        image[y0:y0 + h, x0:x0 + w] = rng.uniform(0, 1, 3)
    return np.rint(255 * image).astype(np.uint8)


def composite(rgba: np.ndarray, background: np.ndarray) -> np.ndarray:
    alpha = rgba[..., 3:4].astype(np.float64) / 255
    out = alpha * rgba[..., :3] + (1 - alpha) * background
    return np.rint(out).astype(np.uint8)


def turn_pose(n_frames: int) -> np.ndarray:
    """(N, J, 3) axis-angle: the A-pose, rotated once about the vertical over the video."""
    angles = 2 * np.pi * np.arange(n_frames) / n_frames
    pose = np.zeros((n_frames, len(JOINT_NAMES), 3))
    pose[:, 0, 1] = angles
    return pose


def motion_pose(name: str, n_frames: int, fps: float, rng: np.random.Generator
                ) -> tuple[np.ndarray, np.ndarray]:
    """(N, J, 3) axis-angle of motion `name` within the joint limits, and (N, 3) root motion."""
    euler, translation = trajectory(name, np.arange(n_frames) / fps, sample_variation(rng))
    return euler_to_axis_angle(clip_to_limits(euler)), translation


def write_video(root: Path, name: str, frames: list[np.ndarray], fits: dict, kps: np.ndarray) -> None:
    folder = root / "images" / name
    folder.mkdir(parents=True)
    for k, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / f"{k}.jpg", quality=JPEG_QUALITY)
    smpl = root / "smpls" / name
    smpl.mkdir(parents=True)
    with open(smpl / "pose_shape.pkl", "wb") as fh:
        pickle.dump(fits, fh, protocol=4)
    with open(smpl / "kps.pkl", "wb") as fh:
        pickle.dump({"kps": kps.astype(np.float32)}, fh, protocol=4)


def make_demo_iper(out: str, *, seed: int, actors: int, val_actors: list[int], frames: int,
                   image_size: int, fps: float, motions: list[str], scale: float) -> dict:
    """Write the demo dataset to the folder `out` (appears complete or not at all).

    Actors 1..`actors`, one cloth each, actions 1 (turn) and 2 (motions[actor % len]); the actors
    in `val_actors` go to val.txt, the others to train.txt. Returns a summary.
    """
    from shapepose.render.correspondence import CorrespondenceRenderer, project_weak

    if actors < 2 or not val_actors or not set(val_actors) < set(range(1, actors + 1)):
        raise ValueError(f"val_actors {val_actors} must be a proper, non-empty subset of 1..{actors}")
    if frames < 2:
        raise ValueError(f"frames must be >= 2, got {frames}")
    template = load_coarse_template()
    split: dict[str, list[str]] = {"train.txt": [], "val.txt": []}
    with atomic_dir(out) as tmp, CorrespondenceRenderer(image_size) as renderer:
        for actor in range(1, actors + 1):
            sex = "mf"[actor % 2]
            identity = sample_identity(derive_rng(seed, STAGE, "identity", actor), sex)
            body = Body(identity, template)
            cloth = sample_cloth(derive_rng(seed, STAGE, "cloth", actor))
            albedo = cloth_albedo(body, cloth)
            for action in (1, 2):
                name = video_name(actor, 1, action)
                rng = derive_rng(seed, STAGE, "video", actor, action)
                if action == 1:
                    pose, root = turn_pose(frames), np.zeros((frames, 3))
                else:
                    pose, root = motion_pose(motions[actor % len(motions)], frames, fps, rng)
                background = demo_background(rng, image_size)
                s = scale * rng.uniform(0.95, 1.05)
                centre = body.rest_vertices[:, 1].max() / 2
                cams = np.stack([np.full(frames, s), root[:, 0] + rng.uniform(-0.1, 0.1),
                                 root[:, 1] - centre], axis=1)
                n = len(JOINT_NAMES)
                rotations = Rotation.from_rotvec(pose.reshape(-1, 3)).as_matrix().reshape(
                    frames, n, 3, 3)
                vertices, joints = body.pose_rotations(rotations, np.zeros((frames, 3)))
                images, kps = [], []
                for t in range(frames):
                    rgba = renderer.colour(vertices[t], template.faces, albedo, cams[t])
                    images.append(composite(rgba, background))
                    px = project_weak(joints[t], cams[t], image_size)
                    kps.append((2 * px + 1) / image_size - 1)
                fits = {"cams": cams, "pose": pose.reshape(frames, -1),
                        "shape": np.concatenate([identity.length, identity.thickness]),
                        "body_model": DEMO_BODY_MODEL, "sex": sex}
                write_video(tmp, name, images, fits, np.asarray(kps))
                split["val.txt" if actor in val_actors else "train.txt"].append(name)
        for file, names in split.items():
            (tmp / file).write_text("".join(f"{n}\n" for n in names))
    return {"videos": sum(len(v) for v in split.values()), "frames": frames,
            "train": split["train.txt"], "val": split["val.txt"]}

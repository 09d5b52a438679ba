"""Videos in memory and the generator's inputs for a (source, reference) pair of frames.

`load_videos` reads every frame, poses the fitted body and renders its correspondence map once
(64 px frames and a 1500-face mesh: milliseconds a frame). `pair_inputs` is the original's
BodyRecoveryFlow without the CUDA renderer: the flow T, the warped source, the three streams'
inputs, the attention targets (the eroded background flags) and the discriminator's condition.
Images are float (B, 3, S, S) in [-1, 1].

It comes in two halves, so that a training step's batch is made on the host (in DataLoader
workers, when the fast path has them) and finished on the device: `pair_frames` gathers the
frames and condition maps and computes the flows (numpy, per pair: the costly part), and
`assemble_inputs` erodes, warps and concatenates (a few tensor operations, fast on the device).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from shapepose.lwgan.data import demo_body, open_video, posed_vertices, read_frame
from shapepose.lwgan.flow import FrameGeometry, condition_map, transformation_flow
from shapepose.training.pipeline import to_device

log = logging.getLogger(__name__)

COND_CHANNELS = 4  # rest-pose x, y, z and the background flag
# rest-pose coordinates scaled to [-1, 1] from these bounds (metres; every demo identity fits)
REST_BOUNDS = (np.array([-0.55, 0.0, -0.35]), np.array([0.55, 2.0, 0.35]))


@dataclass
class VideoTensors:
    """One video: images (N, 3, S, S) float32 in [-1, 1], condition maps (N, 4, S, S), each
    frame's geometry (for the flows), the fitted body and its poses (N, 3 J)."""

    name: str
    images: torch.Tensor
    conditions: torch.Tensor
    geometry: list[FrameGeometry]
    body: object
    pose: np.ndarray

    def __len__(self) -> int:
        return len(self.geometry)


def load_videos(root: str | Path, names: list[str], size: int) -> list[VideoTensors]:
    from shapepose.render.correspondence import CorrespondenceRenderer

    videos = []
    with CorrespondenceRenderer(size, samples=0) as renderer:
        for name in names:
            video = open_video(root, name)
            body = demo_body(video.fits)
            vertices = posed_vertices(body, video.fits.pose)
            images = np.stack([read_frame(p, size) for p in video.frames])
            geometry, conditions = [], []
            for t, cam in enumerate(video.fits.cams):
                face, bary = renderer.correspondence(vertices[t], body.faces, cam)
                g = FrameGeometry(vertices[t], body.faces, cam, face, bary)
                geometry.append(g)
                conditions.append(condition_map(g, body.rest_vertices, REST_BOUNDS))
            videos.append(VideoTensors(
                name, torch.from_numpy(images).permute(0, 3, 1, 2).float().div(127.5).sub(1.0),
                torch.from_numpy(np.stack(conditions)), geometry, body, video.fits.pose))
    log.info("lwgan: %d videos, %d frames of %d px from %s", len(videos),
             sum(len(v) for v in videos), size, root)
    return videos


def erode(mask: torch.Tensor, kernel: int) -> torch.Tensor:
    """The original's morph(mode='erode'): 1 where a kernel x kernel window (padded with 1) is
    all 1. mask (B, 1, S, S) in {0, 1}."""
    if kernel <= 1:
        return mask
    pad = kernel // 2
    padded = F.pad(mask, [pad, pad, pad, pad], value=1.0)
    return -F.max_pool2d(-padded, kernel, stride=1)


@dataclass(frozen=True)
class Morphology:
    """Erosion sizes of the background flag (the original's 3 and 15 at 256 px)."""

    crop_kernel: int  # attention targets and the source stream's body cut-out
    background_kernel: int  # the hole the background stream inpaints


def pair_inputs(videos: list[VideoTensors], pairs: list[tuple[int, int, int]], morph: Morphology,
                device: torch.device, references: list[VideoTensors] | None = None
                ) -> dict[str, torch.Tensor]:
    """Generator and discriminator inputs for (video, source frame, reference frame) pairs; the
    reference frame is of `references[video]` when given (cross-imitation), else of the same
    video."""
    return assemble_inputs(to_device(pair_frames(videos, pairs, references), device), morph)


def pair_frames(videos: list[VideoTensors], pairs: list[tuple[int, int, int]],
                references: list[VideoTensors] | None = None) -> dict[str, torch.Tensor]:
    """The host half of `pair_inputs`: source and reference frames "src", "ref" (B, 3, S, S),
    their condition maps "src_cond", "ref_cond" (B, 4, S, S), the flow "flow" (B, S, S, 2) and
    its valid pixels "valid" (B, S, S) bool, on the CPU."""
    src_img, ref_img, src_cond, ref_cond, flows, valid = [], [], [], [], [], []
    for v, s, r in pairs:
        video = videos[v]
        target = video if references is None else references[v]
        grid, ok = transformation_flow(video.geometry[s], target.geometry[r])
        src_img.append(video.images[s])
        ref_img.append(target.images[r])
        src_cond.append(video.conditions[s])
        ref_cond.append(target.conditions[r])
        flows.append(torch.from_numpy(grid))
        valid.append(torch.from_numpy(ok))
    return {"src": torch.stack(src_img), "ref": torch.stack(ref_img),
            "src_cond": torch.stack(src_cond), "ref_cond": torch.stack(ref_cond),
            "flow": torch.stack(flows), "valid": torch.stack(valid)}


def assemble_inputs(frames: dict[str, torch.Tensor], morph: Morphology) -> dict[str, torch.Tensor]:
    """The device half of `pair_inputs`: from `pair_frames` (on the device), every input of the
    generator and the discriminator."""
    src_img, ref_img = frames["src"], frames["ref"]
    src_cond, ref_cond, flow = frames["src_cond"], frames["ref_cond"], frames["flow"]
    src_bg, ref_bg = src_cond[:, -1:], ref_cond[:, -1:]
    src_crop = erode(src_bg, morph.crop_kernel)
    ref_crop = erode(ref_bg, morph.crop_kernel)
    bg_mask = erode(src_bg, morph.background_kernel)
    warped = F.grid_sample(src_img, flow, mode="bilinear", padding_mode="zeros",
                           align_corners=False)
    return {
        "src": src_img, "ref": ref_img, "flow": flow, "valid": frames["valid"],
        "warped": warped, "ref_cond": ref_cond,
        "bg_in": torch.cat([src_img * bg_mask, bg_mask], dim=1),
        "src_in": torch.cat([src_img * (1 - src_crop), src_cond], dim=1),
        "tsf_in": torch.cat([warped, ref_cond], dim=1),
        "attention_target": torch.cat([src_crop, ref_crop], dim=0),
        "ref_body": 1 - ref_bg,
    }

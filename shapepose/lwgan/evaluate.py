"""Held-out evaluation: self-imitation SSIM / PSNR / masked L1 against two baselines, and
cross-imitation frames for people to look at.

Self-imitation (the original's protocol): every held-out video is reconstructed from its first
frame, each later frame being the reference. Three predictions per pair:
- `trained`: the exported generator's transfer image;
- `untrained`: the same architecture at its step-0 weights (rebuilt from the recorded seed);
- `paste`: the trivial baseline, the source colours warped by the flow wherever the reference
  point is visible in the source, pasted on the source frame whose body pixels are filled with
  the mean colour of its background (what the flow alone gives, with no learning).
With `known_background` (config lwgan.evaluation) the trained and untrained images keep the
source's known background pixels and use the network's background only in the hole, as the paste
baseline does (see `transfer_image`). Metrics on 8-bit RGB: SSIM (skimage.metrics.structural_similarity, data_range 255, 7 x 7
Gaussian-free window, channel_axis), PSNR (skimage.metrics.peak_signal_noise_ratio, data_range
255) over the whole frame, and the masked L1: mean |prediction - reference| / 255 over the
reference body's pixels; each also per action (the turn, where most of the reference is unseen
in the first frame, and the free motion, where nearly all of it is seen). LPIPS, FID and face similarity need pretrained networks: with no
weights configured they are "n/a (no weights)".
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from shapepose.io import atomic_file, write_npz
from shapepose.lwgan.data import posed_vertices, read_split
from shapepose.lwgan.flow import FrameGeometry, condition_map
from shapepose.lwgan.learned_metrics import learned_metrics
from shapepose.lwgan.inputs import REST_BOUNDS, VideoTensors, load_videos, pair_inputs
from shapepose.lwgan.model import compose
from shapepose.lwgan.train import Architecture, load_generator, self_imitation_pairs
from shapepose.training import load_exported, pick_device

log = logging.getLogger(__name__)

DATA_RANGE = 255
ACTIONS = {"1": "turn", "2": "motion"}  # iPER's action 1 is the A-pose turn, action 2 free motion
METHODS = ("trained", "untrained", "paste")


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(B, 3, S, S) in [-1, 1] -> (B, S, S, 3) uint8."""
    return images.detach().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8).permute(
        0, 2, 3, 1).cpu().numpy()


def paste_baseline(inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """Warped source where valid, elsewhere the source frame with its body filled by the mean
    background colour."""
    src, bg = inputs["src"], inputs["src_in"][:, -1:]  # the source's background flag
    mean_bg = (src * bg).flatten(2).sum(2) / bg.flatten(2).sum(2).clamp_min(1)
    plate = src * bg + mean_bg[..., None, None] * (1 - bg)
    valid = inputs["valid"][:, None].to(src.dtype)
    return valid * inputs["warped"] + (1 - valid) * plate


def frame_metrics(pred: np.ndarray, ref: np.ndarray, body: np.ndarray) -> dict[str, float]:
    """SSIM, PSNR and masked L1 of one uint8 (S, S, 3) prediction against its reference."""
    diff = np.abs(pred.astype(np.float64) - ref.astype(np.float64)).mean(-1) / DATA_RANGE
    return {"ssim": float(structural_similarity(pred, ref, data_range=DATA_RANGE, channel_axis=-1)),
            "psnr": float(peak_signal_noise_ratio(ref, pred, data_range=DATA_RANGE)),
            "masked_l1": float(diff[body].mean()) if body.any() else float("nan")}


def transfer_image(G, inputs: dict[str, torch.Tensor], known_background: bool) -> torch.Tensor:
    """G's transfer image; with `known_background` composed over the source's own background
    pixels where they are known (outside the inpainted hole) and G's background only inside it:
    the alternative the original's imitator.py leaves commented out next to its
    src_info['bg'] (the demo's camera never moves within a video, so the known pixels are exact)."""
    out = G(inputs["bg_in"], inputs["src_in"], inputs["tsf_in"], inputs["flow"])
    if not known_background:
        return out["tsf_image"]
    known = inputs["bg_in"][:, -1:]
    background = known * inputs["src"] + (1 - known) * out["background"]
    return compose(out["tsf_attention"], background, out["tsf_colour"])


def predict(G, videos, pairs, arch: Architecture, device, known_background: bool,
            batch: int = 8) -> dict[str, np.ndarray]:
    out: dict[str, list] = {"reference": [], "source": [], "body": [], "ref_cond": [],
                            **{m: [] for m in METHODS}}
    for i in range(0, len(pairs), batch):
        inputs = pair_inputs(videos, pairs[i:i + batch], arch.morphology, device)
        with torch.no_grad():
            for name, net in G.items():
                out[name].append(to_uint8(transfer_image(net, inputs, known_background)))
        out["paste"].append(to_uint8(paste_baseline(inputs)))
        out["reference"].append(to_uint8(inputs["ref"]))
        out["source"].append(to_uint8(inputs["src"]))
        out["body"].append(inputs["ref_body"][:, 0].bool().cpu().numpy())
        out["ref_cond"].append(inputs["ref_cond"].cpu().numpy())
    return {k: np.concatenate(v) for k, v in out.items()}


def summarize(per_frame: dict[str, dict[str, np.ndarray]]) -> dict[str, dict[str, float]]:
    return {m: {k: float(np.nanmean(v)) for k, v in rows.items()} for m, rows in per_frame.items()}


def evaluate_lwgan(*, model: str, data: str, metrics: str, predictions: str, strip: str,
                   animation: str, replicate: int, device: str, cross_reference: str | None,
                   known_background: bool, weights: dict) -> dict:
    """The rule's work: held-out self-imitation metrics (JSON), per-pair predictions (npz), a
    cross-imitation frame strip (PNG) and its animation (GIF)."""
    device = pick_device(device)
    exported = load_exported(model)
    extra = exported["meta"]["extra"]
    arch = Architecture(**extra["architecture"])
    val = read_split(data, "val.txt")
    videos = load_videos(data, val, arch.image_size)
    pairs = self_imitation_pairs(videos)
    nets = {"trained": load_generator(exported, device),
            "untrained": load_generator(exported, device, untrained=True)}
    pred = predict(nets, videos, pairs, arch, device, known_background)
    per_frame = {m: {k: np.array([frame_metrics(pred[m][i], pred["reference"][i], pred["body"][i])[k]
                                  for i in range(len(pairs))]) for k in ("ssim", "psnr", "masked_l1")}
                 for m in METHODS}
    write_npz(predictions, pairs=np.array([(v, s, r) for v, s, r in pairs]),
              videos=np.array([videos[v].name for v, _, _ in pairs]),
              **{m: pred[m] for m in METHODS}, reference=pred["reference"],
              source=pred["source"], body=pred["body"],
              **{f"{m}_{k}": per_frame[m][k] for m in METHODS for k in per_frame[m]})
    summary = summarize(per_frame)
    actions = np.array([videos[v].name.rsplit("/", 1)[-1] for v, _, _ in pairs])
    by_action = {}
    for action in sorted(set(actions)):
        here = actions == action
        by_action[ACTIONS.get(action, f"action {action}")] = {
            "n_pairs": int(here.sum()),
            **summarize({m: {k: v[here] for k, v in rows.items()} for m, rows in per_frame.items()})}
    result = {"experiment": extra["experiment"], "replicate": int(replicate), "n_pairs": len(pairs),
              "videos": val, "data_range": DATA_RANGE, "protocol": "self-imitation from frame 0",
              "perceptual": extra["perceptual"], "face": extra["face"],
              "known_background": bool(known_background),
              **{m: summary[m] for m in METHODS}, "by_action": by_action,
              "learned": {m: learned_metrics(weights, pred[m], pred["reference"],
                                             torch.from_numpy(pred["ref_cond"])) for m in METHODS}}
    result.update(result["learned"]["trained"])
    result["beats_untrained"] = bool(summary["trained"]["masked_l1"] < summary["untrained"]["masked_l1"])
    result["beats_paste"] = bool(summary["trained"]["masked_l1"] < summary["paste"]["masked_l1"])
    write_cross_imitation(nets["trained"], data, val[0], cross_reference, arch, device, strip,
                          animation, known_background)
    with atomic_file(metrics) as tmp:
        Path(tmp).write_text(json.dumps(result, indent=2) + "\n")
    log.info("lwgan %s r%d: trained %s, untrained %s, paste %s", extra["experiment"], replicate,
             summary["trained"], summary["untrained"], summary["paste"])
    return result


def write_cross_imitation(G, data: str, source_video: str, reference_video: str | None,
                          arch: Architecture, device, strip: str, animation: str,
                          known_background: bool) -> None:
    """A held-out actor (the first frame of `source_video`) imitating the motion of
    `reference_video` (default: the first training video of action 2): rows of source |
    reference | ours, as one PNG strip (every other frame) and a GIF."""
    from PIL import Image

    from shapepose.render.correspondence import CorrespondenceRenderer

    if reference_video is None:
        reference_video = next((n for n in read_split(data, "train.txt") if n.endswith("/2")),
                               read_split(data, "train.txt")[0])
    src, ref = load_videos(data, [source_video, reference_video], arch.image_size)
    frames = []
    with CorrespondenceRenderer(arch.image_size, samples=0) as renderer:
        for t in range(len(ref)):
            target = retarget(src, ref, t, renderer)
            inputs = pair_inputs([src], [(0, 0, 0)], arch.morphology, device, references=[target])
            with torch.no_grad():
                ours = to_uint8(transfer_image(G, inputs, known_background))[0]
            frames.append(np.concatenate([to_uint8(src.images[:1])[0],
                                          to_uint8(ref.images[t:t + 1])[0], ours], axis=1))
    with atomic_file(strip) as tmp:
        Image.fromarray(np.concatenate(frames[::2], 0)).save(tmp, format="PNG")
    with atomic_file(animation) as tmp:
        images = [Image.fromarray(f).resize((f.shape[1] * 2, f.shape[0] * 2), Image.NEAREST)
                  for f in frames]
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=125,
                       loop=0)


def retarget(src: VideoTensors, ref: VideoTensors, t: int, renderer) -> VideoTensors:
    """A one-frame video: the source's body in the reference's pose at frame t, framed by the
    reference's camera scale and x offset and the source's own height offset."""
    vertices = posed_vertices(src.body, ref.pose[t:t + 1])[0]
    cam = ref.geometry[t].cam.copy()
    cam[2] = src.geometry[0].cam[2]
    face, bary = renderer.correspondence(vertices, src.body.faces, cam)
    geometry = FrameGeometry(vertices, src.body.faces, cam, face, bary)
    cond = torch.from_numpy(condition_map(geometry, src.body.rest_vertices, REST_BOUNDS))[None]
    return VideoTensors(f"{src.name} as {ref.name}:{t}", ref.images[t:t + 1], cond, [geometry],
                        src.body, ref.pose[t:t + 1])

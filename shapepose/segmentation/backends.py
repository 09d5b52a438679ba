"""Mask R-CNN behind one small interface: `Segmenter.predict(image) -> list[Instance]`.

Two backends: torchvision (the demo model trained here, or a COCO `maskrcnn_resnet50_fpn(_v2)`
state dict from a file) and detectron2 (its model-zoo `mask_rcnn_R_50_FPN_3x` config with a
weights file; imported only when chosen). Both return masks pasted at the photo's full size and
thresholded, the predicted box as [x, y, w, h], the score, and COCO category ids. Nothing is ever
downloaded: a weights file that is not there is an `InputError`.
"""

from __future__ import annotations

import abc
import logging
from pathlib import Path

import numpy as np
import torch

from shapepose.errors import InputError
from shapepose.images.instances import Instance
from shapepose.segmentation.model import COCO_ARCHS, COCO_IDS, DETECTION_NMS_THRESHOLD, build_model

log = logging.getLogger("shapepose.segmentation")

BACKENDS = ("torchvision", "detectron2")
DETECTRON2_CONFIG = "COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x.yaml"


class Segmenter(abc.ABC):
    """Instance segmentation of one RGB photo at a time."""

    name: str

    @abc.abstractmethod
    def predict(self, image: np.ndarray) -> list[Instance]:
        """image: (H, W, 3) uint8 RGB -> instances with (H, W) masks, best score first."""

    def describe(self) -> dict:
        """What produced the predictions, for the instances file's meta."""
        return {"backend": self.name}


def instances_from_arrays(boxes: np.ndarray, scores: np.ndarray, category_ids: np.ndarray,
                          masks: np.ndarray) -> list[Instance]:
    """Instances from a detector's outputs, ordered by falling score.

    boxes: (N, 4) x1, y1, x2, y2 pixels; scores: (N,); category_ids: (N,) COCO ids;
    masks: (N, H, W) bool at the photo's size. The box is the predicted one (the thesis's
    mask-to-box ratio is taken against it), not the mask's tight box.
    """
    order = np.argsort(-np.asarray(scores), kind="stable")
    out = []
    for k in order:
        x1, y1, x2, y2 = (float(v) for v in boxes[k])
        out.append(Instance.from_mask(masks[k], int(category_ids[k]), float(scores[k]),
                                      bbox=(x1, y1, max(x2 - x1, 0.0), max(y2 - y1, 0.0))))
    return out


def _check_image(image: np.ndarray) -> None:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {image.shape} {image.dtype}")


class TorchvisionSegmenter(Segmenter):
    """A torchvision `MaskRCNN` whose class index is the COCO category id."""

    name = "torchvision"

    def __init__(self, model: torch.nn.Module, device: torch.device, *,
                 mask_threshold: float = 0.5, source: str = ""):
        self.model = model.to(device).eval()
        self.device = device
        self.mask_threshold = float(mask_threshold)
        self.source = source

    @torch.no_grad()
    def predict(self, image: np.ndarray) -> list[Instance]:
        _check_image(image)
        # a copy: photos read through PIL are read-only arrays, which torch warns about
        tensor = torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1)
        tensor = tensor.to(self.device, torch.float32) / 255.0
        out = self.model([tensor])[0]
        # torchvision pastes each (1, H, W) mask probability map into the full photo already.
        masks = (out["masks"][:, 0] >= self.mask_threshold).cpu().numpy()
        return instances_from_arrays(out["boxes"].cpu().numpy(), out["scores"].cpu().numpy(),
                                     out["labels"].cpu().numpy(), masks)

    def describe(self) -> dict:
        return {"backend": self.name, "weights": self.source,
                "score_threshold": float(self.model.roi_heads.score_thresh),
                "nms_threshold": float(self.model.roi_heads.nms_thresh),
                "mask_threshold": self.mask_threshold}


def _torchvision_from_export(path: Path, **thresholds: float) -> torch.nn.Module:
    """The demo model written by `train_segmenter` (its architecture travels in the file)."""
    from shapepose.training import load_exported

    data = load_exported(path)
    arch = (data["meta"].get("extra") or {}).get("arch")
    if not isinstance(arch, dict) or "model" not in data:
        raise InputError(path, "exported file holds no segmenter (no 'model' state or no arch)")
    model = build_model(arch, **thresholds)
    _load_state(model, data["model"], path)
    return model


def _load_state(model: torch.nn.Module, state: dict, path: Path) -> None:
    try:
        model.load_state_dict(state)
    except (RuntimeError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise InputError(path, f"weights do not fit the model: {first}") from None


def _torchvision_from_state_dict(path: Path, arch: str, **thresholds: float) -> torch.nn.Module:
    """A COCO ResNet-50 Mask R-CNN from a torchvision state-dict file (e.g. the model-zoo .pth)."""
    if arch not in COCO_ARCHS:
        raise InputError(path, f"segmentation.arch must be one of {COCO_ARCHS} for a weights "
                               f"file, got {arch!r}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise InputError(path, f"cannot read weights: {exc}") from None
    if isinstance(state, dict) and isinstance(state.get("model"), dict) and "meta" in state:
        state = state["model"]  # an exported file of ours holding a COCO architecture
    if not isinstance(state, dict):
        raise InputError(path, "weights file is not a state dict")
    model = build_model({"name": arch}, **thresholds)
    _load_state(model, state, path)
    return model


def load_torchvision_segmenter(weights: str | Path, *, arch: str = "demo",
                               score_threshold: float = 0.05,
                               nms_threshold: float = DETECTION_NMS_THRESHOLD,
                               mask_threshold: float = 0.5,
                               device: torch.device | str = "cpu") -> TorchvisionSegmenter:
    """`weights`: a `train_segmenter` export (arch "demo") or a COCO state dict (arch in COCO_ARCHS)."""
    path = Path(weights)
    if not path.is_file():
        raise InputError(path, "segmenter weights file does not exist (nothing is downloaded; "
                               "put the checkpoint there or set segmentation.weights)")
    thresholds = {"score_threshold": score_threshold, "nms_threshold": nms_threshold}
    if arch == "demo":
        model = _torchvision_from_export(path, **thresholds)
    else:
        model = _torchvision_from_state_dict(path, arch, **thresholds)
    return TorchvisionSegmenter(model, torch.device(device), mask_threshold=mask_threshold,
                                source=str(path))


def coco_ids_of_contiguous(classes: np.ndarray) -> np.ndarray:
    """detectron2's contiguous COCO class indices 0..79 -> COCO category ids (car 2 -> 3)."""
    classes = np.asarray(classes, dtype=np.int64)
    if classes.size and (classes.min() < 0 or classes.max() >= len(COCO_IDS)):
        raise ValueError(f"contiguous COCO class out of range 0..79: {classes.min()}..{classes.max()}")
    return np.asarray(COCO_IDS, dtype=np.int64)[classes]


class Detectron2Segmenter(Segmenter):
    """detectron2's `DefaultPredictor` on a model-zoo config, with a local weights file."""

    name = "detectron2"

    def __init__(self, weights: str | Path, *, config: str = DETECTRON2_CONFIG,
                 score_threshold: float = 0.05, nms_threshold: float = DETECTION_NMS_THRESHOLD,
                 device: torch.device | str = "cpu"):
        weights = Path(weights)
        if not weights.is_file():
            raise InputError(weights, "detectron2 weights file does not exist (nothing is "
                                      "downloaded; e.g. model_final_f10217.pkl of the model zoo)")
        try:
            from detectron2 import model_zoo
            from detectron2.config import get_cfg
            from detectron2.engine import DefaultPredictor
        except ImportError as exc:
            raise InputError(weights, f"segmentation.backend is detectron2 but it cannot be "
                                      f"imported ({exc})") from None
        cfg = get_cfg()
        # The zoo's yaml files ship inside the package; only the weights come from our file.
        cfg.merge_from_file(model_zoo.get_config_file(config))
        cfg.MODEL.WEIGHTS = str(weights)
        cfg.MODEL.DEVICE = str(device)
        cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = float(score_threshold)
        cfg.MODEL.ROI_HEADS.NMS_THRESH_TEST = float(nms_threshold)
        self.cfg = cfg
        self.predictor = DefaultPredictor(cfg)
        self.config_name = config
        self.weights = weights

    def predict(self, image: np.ndarray) -> list[Instance]:
        _check_image(image)
        # DefaultPredictor takes the channel order of cfg.INPUT.FORMAT (BGR for the zoo models).
        if self.cfg.INPUT.FORMAT == "BGR":
            image = image[:, :, ::-1]
        found = self.predictor(np.ascontiguousarray(image))["instances"].to("cpu")
        return instances_from_arrays(found.pred_boxes.tensor.numpy(), found.scores.numpy(),
                                     coco_ids_of_contiguous(found.pred_classes.numpy()),
                                     found.pred_masks.numpy().astype(bool))

    def describe(self) -> dict:
        return {"backend": self.name, "config": self.config_name, "weights": str(self.weights),
                "score_threshold": float(self.cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST),
                "nms_threshold": float(self.cfg.MODEL.ROI_HEADS.NMS_THRESH_TEST)}


def load_segmenter(backend: str, weights: str | Path, *, arch: str = "demo",
                   detectron2_config: str = DETECTRON2_CONFIG, score_threshold: float = 0.05,
                   nms_threshold: float = DETECTION_NMS_THRESHOLD, mask_threshold: float = 0.5,
                   device: torch.device | str = "cpu") -> Segmenter:
    """The configured backend with its weights (see the module docstring)."""
    if backend == "torchvision":
        return load_torchvision_segmenter(weights, arch=arch, score_threshold=score_threshold,
                                          nms_threshold=nms_threshold,
                                          mask_threshold=mask_threshold, device=device)
    if backend == "detectron2":
        return Detectron2Segmenter(weights, config=detectron2_config,
                                   score_threshold=score_threshold, nms_threshold=nms_threshold,
                                   device=device)
    raise ValueError(f"unknown segmentation backend {backend!r}; expected one of {BACKENDS}")

"""Mask R-CNN models: the light demo network trained from scratch, and the COCO ResNet-50 ones.

Every model predicts COCO category ids directly (91 outputs, index = COCO id, 0 = background), so
the filters downstream treat a demo model and a COCO checkpoint alike.
"""

from __future__ import annotations

from functools import partial

from torch import nn
from torchvision.models import resnet
from torchvision.models.detection import MaskRCNN
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor

NUM_COCO_CLASSES = 91  # torchvision's COCO numbering: index = COCO category id, 0 = background

# The COCO category id of each of the 80 contiguous class indices used by detectron2 (and by
# COCO's own annotation files, which skip 11 unused ids).
COCO_IDS = (
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 27, 28,
    31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55,
    56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 67, 70, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 84,
    85, 86, 87, 88, 89, 90,
)

# Per-class box NMS at inference (seed 002 Appendix C, DETECTION_NMS_THRESHOLD); torchvision's 0.5
# leaves duplicate detections of one object that the filters would pass twice.
DETECTION_NMS_THRESHOLD = 0.3

# Architectures a checkpoint path may hold (torchvision state dicts of COCO-trained models).
COCO_ARCHS = ("maskrcnn_resnet50_fpn", "maskrcnn_resnet50_fpn_v2")


def default_demo_arch() -> dict:
    """The demo network's hyper-parameters; stored in the exported model so `segment` rebuilds it."""
    return {"name": "demo", "backbone": "resnet18", "fpn_channels": 64, "head_channels": 128,
            "min_size": 192, "max_size": 320, "group_norm": 8}


def build_demo_model(arch: dict, *, score_threshold: float = 0.05,
                     nms_threshold: float = DETECTION_NMS_THRESHOLD,
                     detections_per_image: int = 100) -> MaskRCNN:
    """A small Mask R-CNN for CPU training from scratch.

    ResNet-18/34 trunk with GroupNorm (batch statistics of 2-4 images are too noisy for
    BatchNorm, and frozen BatchNorm only suits pretrained weights), a narrow FPN and narrow heads:
    about a tenth of the ResNet-50 model's compute at the demo's image sizes.
    """
    groups = int(arch["group_norm"])
    trunk = getattr(resnet, arch["backbone"])(weights=None, norm_layer=partial(nn.GroupNorm, groups))
    channels = 64 if arch["backbone"] in ("resnet18", "resnet34") else 256
    fpn = int(arch["fpn_channels"])
    backbone = BackboneWithFPN(
        trunk, return_layers={"layer1": "0", "layer2": "1", "layer3": "2", "layer4": "3"},
        in_channels_list=[channels, channels * 2, channels * 4, channels * 8], out_channels=fpn,
    )
    head = int(arch["head_channels"])
    return MaskRCNN(
        backbone,
        num_classes=None,
        min_size=int(arch["min_size"]),
        max_size=int(arch["max_size"]),
        box_head=TwoMLPHead(fpn * 7 * 7, head * 2),
        box_predictor=FastRCNNPredictor(head * 2, NUM_COCO_CLASSES),
        mask_head=MaskRCNNHeads(fpn, [head, head], 1),
        mask_predictor=MaskRCNNPredictor(head, head, NUM_COCO_CLASSES),
        # The demo photos hold a few objects each: fewer proposals and sampled boxes than
        # COCO's defaults (2000 / 1000 proposals, 512 boxes) cut the per-step overhead on a CPU.
        rpn_pre_nms_top_n_train=1000, rpn_post_nms_top_n_train=500,
        rpn_pre_nms_top_n_test=500, rpn_post_nms_top_n_test=300,
        box_batch_size_per_image=128,
        box_score_thresh=score_threshold,
        box_nms_thresh=nms_threshold,
        box_detections_per_img=detections_per_image,
    )


def build_coco_model(name: str, *, score_threshold: float = 0.05,
                     nms_threshold: float = DETECTION_NMS_THRESHOLD,
                     detections_per_image: int = 100) -> MaskRCNN:
    """An untrained torchvision COCO Mask R-CNN (`name` in COCO_ARCHS), for loading a state dict.

    Nothing is downloaded: weights come only from the file the config names.
    """
    from torchvision.models import detection

    if name not in COCO_ARCHS:
        raise ValueError(f"unknown architecture {name!r}; expected one of {COCO_ARCHS}")
    return getattr(detection, name)(weights=None, weights_backbone=None,
                                    num_classes=NUM_COCO_CLASSES,
                                    box_score_thresh=score_threshold,
                                    box_nms_thresh=nms_threshold,
                                    box_detections_per_img=detections_per_image)


def build_model(arch: dict, **kwargs) -> MaskRCNN:
    """The model an architecture record describes: {"name": "demo", ...} or {"name": COCO arch}."""
    if arch["name"] == "demo":
        return build_demo_model(arch, **kwargs)
    return build_coco_model(arch["name"], **kwargs)


__all__ = ["COCO_ARCHS", "COCO_IDS", "DETECTION_NMS_THRESHOLD", "NUM_COCO_CLASSES", "build_coco_model", "build_demo_model",
           "build_model", "default_demo_arch"]

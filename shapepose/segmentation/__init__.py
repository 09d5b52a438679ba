"""Mask R-CNN instance segmentation of photos (seed 002 chapter 3): models, backends, training,
and sharded inference.

    segmenter = load_segmenter("torchvision", "results/segmenter/cars_demo/model.pt")
    instances = segmenter.predict(photo)            # photo: (H, W, 3) uint8 RGB
"""

from shapepose.segmentation.backends import (
    BACKENDS, Detectron2Segmenter, Segmenter, TorchvisionSegmenter, coco_ids_of_contiguous,
    instances_from_arrays, load_segmenter)
from shapepose.segmentation.model import (
    COCO_ARCHS, COCO_IDS, build_coco_model, build_demo_model, build_model, default_demo_arch)

__all__ = ["BACKENDS", "COCO_ARCHS", "COCO_IDS", "Detectron2Segmenter", "Segmenter",
           "TorchvisionSegmenter", "build_coco_model", "build_demo_model", "build_model",
           "coco_ids_of_contiguous", "default_demo_arch", "instances_from_arrays", "load_segmenter"]

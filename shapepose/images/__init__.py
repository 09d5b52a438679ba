"""The image branch (seed 002): car photos and renders, segmentation, filters, normalization."""

# Mask R-CNN on the photos (seed 002 chapter 3): optional demo training, sharded inference.

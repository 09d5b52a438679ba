# Image branch inputs (seed 002): synthetic renders (DPC layout) and photos (Stanford Cars layout).

# The thesis filters and frame-ratio normalization (seed 002 sections 3.1-3.3) and their tables.


def image_branch_outputs():
    """Everything the image branch produces that `rule all` asks for."""
    return []

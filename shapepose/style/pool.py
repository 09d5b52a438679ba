"""The image pool of seed 002 section 6.1.1: discriminators see a buffer of 50 past fakes.

Until the pool is full every new image goes in and is returned. Afterwards each new image, with
probability 1/2, replaces a random stored one and the stored one is returned instead; otherwise
it is returned as it is. Random draws come from the caller's generator (the training loop seeds
one per step), and `state_dict` carries the stored images, so a resumed run draws the same.
"""

from __future__ import annotations

import torch


class ImagePool:
    def __init__(self, size: int, device: torch.device | str = "cpu"):
        if size < 0:
            raise ValueError(f"pool size must be >= 0, got {size}")
        self.size = size
        self.device = torch.device(device)
        self.images: list[torch.Tensor] = []

    def query(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """(B, C, H, W) new fakes -> (B, C, H, W) fakes for the discriminator (detached)."""
        images = images.detach()
        if self.size == 0:
            return images
        out = []
        for image in images:
            image = image.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
                continue
            swap = float(torch.rand((), generator=generator)) > 0.5
            if swap:
                k = int(torch.randint(0, self.size, (), generator=generator))
                out.append(self.images[k].clone())
                self.images[k] = image.clone()
            else:
                out.append(image)
        return torch.cat(out, dim=0)

    def state_dict(self) -> dict:
        stacked = torch.cat(self.images).cpu() if self.images else torch.empty(0)
        return {"size": self.size, "images": stacked}

    def load_state_dict(self, state: dict) -> None:
        if int(state["size"]) != self.size:
            raise ValueError(f"pool size {state['size']} in the checkpoint, {self.size} here")
        images = state["images"]
        self.images = [im.unsqueeze(0).to(self.device) for im in images] if images.numel() else []

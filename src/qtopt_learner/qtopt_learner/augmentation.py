"""Image augmentation of App. E: random crop, brightness, contrast and saturation, with the same
draw applied to s and s' of a transition.

The Bellman updaters augment, so the target V(s') is computed on the same view the trainer
then fits Q(s, a) on. Camera frames (uint8 [B, H, W, 3]) are cropped to the network's input
size at a random offset (the policy uses the centre crop, App. D.1).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from qtopt_learner.learner_config import AugmentConfig


@dataclass(frozen=True)
class AugmentDraw:
    """One random draw per transition: crop offsets and colour factors, all [B]."""

    top: torch.Tensor
    left: torch.Tensor
    brightness: torch.Tensor
    contrast: torch.Tensor
    saturation: torch.Tensor


_LUMA = torch.tensor([0.299, 0.587, 0.114])


def draw_augmentation(
    batch: int, frame_hw: tuple[int, int], size: int, config: AugmentConfig,
    generator: torch.Generator | None = None,
) -> AugmentDraw:
    """Random parameters for ``batch`` transitions; centre crop and identity colour when off."""
    height, width = frame_hw
    if size > min(height, width):
        raise ValueError(f"crop size {size} larger than the frame {height}x{width}")

    def uniform(low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(batch, generator=generator)

    if config.enabled and config.random_crop:
        top = torch.randint(0, height - size + 1, (batch,), generator=generator)
        left = torch.randint(0, width - size + 1, (batch,), generator=generator)
    else:
        top = torch.full((batch,), (height - size) // 2)
        left = torch.full((batch,), (width - size) // 2)
    if not config.enabled:
        ones = torch.ones(batch)
        return AugmentDraw(top, left, torch.zeros(batch), ones, ones)
    return AugmentDraw(top, left, uniform(-config.brightness, config.brightness),
                       uniform(*config.contrast), uniform(*config.saturation))


def apply_augmentation(images: torch.Tensor, draw: AugmentDraw, size: int) -> torch.Tensor:
    """uint8 [B, H, W, 3] -> uint8 [B, size, size, 3] with the drawn crop and colour changes."""
    rows = draw.top[:, None] + torch.arange(size)[None, :]  # [B, size]
    cols = draw.left[:, None] + torch.arange(size)[None, :]
    batch_index = torch.arange(images.shape[0])[:, None, None]
    crops = images[batch_index, rows[:, :, None], cols[:, None, :]].float() / 255.0
    crops = crops + draw.brightness[:, None, None, None]
    mean = crops.mean(dim=(1, 2, 3), keepdim=True)
    crops = (crops - mean) * draw.contrast[:, None, None, None] + mean
    gray = (crops * _LUMA).sum(dim=3, keepdim=True)
    crops = (crops - gray) * draw.saturation[:, None, None, None] + gray
    return (crops.clamp(0.0, 1.0) * 255.0).round().to(torch.uint8)

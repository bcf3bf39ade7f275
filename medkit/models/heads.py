"""Heads on top of feature maps."""
from __future__ import annotations

from torch import nn


def segmentation_head(in_channels: int, n_classes: int) -> nn.Conv2d:
    """A 1x1 convolution from features (B, in_channels, H, W) to logits (B, n_classes, H, W).

    On a frozen encoder this is the linear probe of dense SSL (Pix2Rep, Seince et al. 2024).
    """
    return nn.Conv2d(in_channels, n_classes, kernel_size=1)

"""Networks: a 2D U-Net with every feature map reachable, ResNet encoders, DeepLabv3+, heads."""
from __future__ import annotations

from medkit.models.build import build_model

__all__ = ["build_model"]

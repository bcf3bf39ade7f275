"""medkit: a study kit for self-supervised contrastive pretraining in medical image segmentation.

The package is a chain of small modules (design: ../README.md):
``data`` (volumes, phantom, slices, splits, augmentation) -> ``models`` (U-Net, ResNet,
DeepLabv3+, heads) -> ``train`` (one loop, checkpoints) -> ``eval`` (3D Dice, HD95) -> ``runs``.
"""
from __future__ import annotations

from medkit.errors import MedkitError

__all__ = ["MedkitError"]
__version__ = "0.1.0"

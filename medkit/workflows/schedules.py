"""The default schedule of each command that trains: one place, read by the command line."""
from __future__ import annotations

from medkit.engine.config import TrainConfig

PRETRAIN = TrainConfig(steps=2000)
"""Pretraining (``python -m medkit pretrain``): TrainConfig's defaults with 2000 steps."""

FEW_LABEL = TrainConfig()
"""Few-label training (``supervised`` and ``evaluate``): TrainConfig's own defaults."""

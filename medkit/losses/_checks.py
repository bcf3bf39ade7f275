"""Shape checks shared by the losses."""
from __future__ import annotations

import torch


def same_2d(name: str, a: torch.Tensor, b: torch.Tensor) -> None:
    """Raise ``ValueError`` unless a and b are both (N, D) with the same shape and N >= 1."""
    if a.ndim != 2 or a.shape != b.shape or a.shape[0] < 1:
        raise ValueError(f"{name}: expected two (N, D) tensors of the same shape, got "
                         f"{tuple(a.shape)} and {tuple(b.shape)}")

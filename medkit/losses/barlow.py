"""Barlow Twins (Zbontar et al., ICML 2021); Pix2Rep-v2 applies it to pixel embeddings.

With z1, z2 (N, D) standardised per dimension over the N samples, the cross-correlation
C = z1^T z2 / N (D, D) is pushed to the identity:

    L = sum_i (1 - C_ii)^2 + lambda * sum_{i != j} C_ij^2.
"""
from __future__ import annotations

import torch

from medkit.losses._checks import same_2d


def barlow_twins(z1: torch.Tensor, z2: torch.Tensor, lambd: float = 5e-3,
                 eps: float = 1e-5) -> dict[str, torch.Tensor]:
    """Barlow Twins loss and its two terms.

    Args:
        z1, z2: (N, D) embeddings of corresponding samples (images, or pixels for Pix2Rep-v2), N >= 2.
        lambd: weight of the redundancy term (paper: 5e-3).

    Returns:
        ``{"loss", "invariance", "redundancy"}``.
    """
    same_2d("barlow_twins", z1, z2)
    if z1.shape[0] < 2:
        raise ValueError(f"barlow_twins: needs N >= 2 samples to standardise, got {tuple(z1.shape)}")
    n = z1.shape[0]
    a = (z1 - z1.mean(0)) / (z1.std(0, unbiased=False) + eps)  # (N, D)
    b = (z2 - z2.mean(0)) / (z2.std(0, unbiased=False) + eps)
    c = a.T @ b / n  # (D, D)
    diag = torch.diagonal(c)
    inv = ((1 - diag) ** 2).sum()
    red = (c**2).sum() - (diag**2).sum()
    return {"loss": inv + lambd * red, "invariance": inv, "redundancy": red}

"""Singular-value spectrum of the embedding covariance (Jing et al., ICLR 2022, "DirectCLR").

Take N embeddings (N >> D), L2-normalise each, form the D x D covariance
C = (Z - mean)^T (Z - mean) / N and sort its singular values. Plotted on a log scale, dimensional
collapse shows as a cliff: many singular values near zero.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def _check(z: torch.Tensor) -> torch.Tensor:
    if z.ndim != 2 or z.shape[0] < 2:
        raise ValueError(f"expected an (N, D) embedding matrix with N >= 2, got {tuple(z.shape)}")
    return z.detach().double()


def spectrum(z: torch.Tensor, normalize: bool = True) -> torch.Tensor:
    """Singular values (D,), descending, of the covariance of the (L2-normalised) embeddings.

    Healthy: a slowly decaying spectrum, all values of similar order (isotropic Gaussian in D
    dimensions, normalised: all about 1/D). Collapsed to r dimensions: D - r values near 0
    (below 1e-6 of the largest in float64).

    Args:
        z: (N, D) embeddings, N well above D for a trustworthy spectrum.
        normalize: L2-normalise each embedding first (DirectCLR does).
    """
    z = _check(z)
    if normalize:
        z = F.normalize(z, dim=1)
    cov = torch.cov(z.T, correction=0)  # (D, D), divided by N as in DirectCLR
    return torch.linalg.svdvals(cov).float()  # (D,), descending


def correlation_matrix(z: torch.Tensor) -> torch.Tensor:
    """Pearson correlation between the D feature dimensions, (D, D) (``torch.corrcoef``).

    Healthy (decorrelated, e.g. after ZCA whitening): near the identity. Collapsed: large
    off-diagonal blocks (many dimensions carry the same signal). A dead (constant) dimension has
    no correlation: its row and column are 0.
    """
    return torch.corrcoef(_check(z).T).nan_to_num(0.0).float()

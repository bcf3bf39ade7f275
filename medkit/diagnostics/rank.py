"""Scalar monitors of collapse: effective rank, collapsed and dead dimensions, std, alignment,
uniformity.

Two effective ranks are offered because they can disagree strongly on the same features (the first
weighs the raw, uncentred matrix, the second the spread of the normalised, centred embeddings):

* :func:`rankme` (Garrido et al., ICML 2023): singular values s_k of the *uncentred* N x D
  embedding matrix, p_k = s_k / sum(s) + 1e-7, rank = exp(-sum_k p_k log p_k), in [1, min(N, D)].
* :func:`effective_rank_cov`: the same entropy, over the singular values of the covariance of the
  L2-normalised embeddings (the spectrum of :func:`~medkit.diagnostics.spectrum.spectrum`).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from medkit.diagnostics.spectrum import _check, spectrum


def _entropy_rank(s: torch.Tensor, eps: float = 1e-7) -> float:
    p = s / s.sum() + eps
    return float(torch.exp(-(p * torch.log(p)).sum()))


def rankme(z: torch.Tensor) -> float:
    """RankMe effective rank of an (N, D) embedding matrix.

    Healthy: close to min(N, D) (isotropic Gaussian: about 0.9 D for N >> D). Collapsed to r
    dimensions: about r (1 for a single repeated direction).
    """
    return _entropy_rank(torch.linalg.svdvals(_check(z)))


def effective_rank_cov(z: torch.Tensor) -> float:
    """Entropy effective rank of the covariance spectrum of the L2-normalised embeddings.

    Healthy: close to D. Collapsed to r dimensions: at most about r.
    """
    return _entropy_rank(spectrum(z).double())


def collapsed_fraction(z: torch.Tensor, threshold: float = 1e-4) -> float:
    """Share of covariance singular values below ``threshold`` x the largest.

    Healthy: 0. Collapsed to r of D dimensions: (D - r) / D.
    """
    s = spectrum(z)
    return float((s < threshold * s[0]).float().mean())


def dead_fraction(z: torch.Tensor, threshold: float = 1e-3) -> float:
    """Share of dimensions whose std over the N samples is below ``threshold`` (raw embeddings).

    Healthy: 0. A dimension that never changes (dead ReLU, constant output): counted.
    """
    return float((_check(z).std(0) < threshold).float().mean())


def normalized_std(z: torch.Tensor) -> float:
    """Mean over dimensions of the std of the L2-normalised embeddings (lightly's monitor).

    Healthy: about 1 / sqrt(D). Complete collapse (all embeddings equal): 0.
    """
    return float(F.normalize(_check(z), dim=1).std(0).mean())


def alignment(z1: torch.Tensor, z2: torch.Tensor, alpha: float = 2.0) -> float:
    """Alignment of positive pairs (Wang & Isola, ICML 2020): E ||u1 - u2||^alpha, u normalised.

    Perfectly aligned views: 0. Unrelated views on the sphere: about 2 (alpha = 2).
    """
    a, b = F.normalize(_check(z1), dim=1), F.normalize(_check(z2), dim=1)
    if a.shape != b.shape:
        raise ValueError(f"alignment: views must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    return float((a - b).norm(dim=1).pow(alpha).mean())


def uniformity(z: torch.Tensor, t: float = 2.0) -> float:
    """Uniformity (Wang & Isola 2020): log E exp(-t ||u_i - u_j||^2) over pairs i != j.

    Uniform on the sphere: strongly negative (about -4 for D = 128, t = 2). Collapsed to one
    point: 0.
    """
    u = F.normalize(_check(z), dim=1)
    d2 = torch.pdist(u).pow(2)  # (N (N-1) / 2,)
    return float(torch.log(torch.exp(-t * d2).mean()))

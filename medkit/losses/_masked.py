"""The masked contrastive form that several losses share."""
from __future__ import annotations

import torch


def masked_contrastive(sim: torch.Tensor, positives: torch.Tensor, allowed: torch.Tensor,
                       weight: torch.Tensor | None = None) -> torch.Tensor:
    """Mean over anchors of -1/|P(i)| sum_{p in P(i)} log( exp(s_ip) / sum_{a in A(i)} exp(s_ia) ).

    Args:
        sim: (M, K) similarities already divided by the temperature.
        positives: (M, K) bool, P(i); must be a subset of ``allowed``.
        allowed: (M, K) bool, A(i) (the denominator: positives and negatives).
        weight: (M,) anchor weights (0 drops an anchor, e.g. one outside the field of view).

    Anchors without any positive are dropped.
    """
    if not (sim.shape == positives.shape == allowed.shape):
        raise ValueError(f"masked_contrastive: sim {tuple(sim.shape)}, positives {tuple(positives.shape)} "
                         f"and allowed {tuple(allowed.shape)} must have the same shape")
    log_den = torch.logsumexp(sim.masked_fill(~allowed, float("-inf")), dim=1, keepdim=True)  # (M, 1)
    n_pos = positives.sum(1)  # (M,)
    log_prob = (sim - log_den).masked_fill(~positives, 0.0)
    per_anchor = -log_prob.sum(1) / n_pos.clamp(min=1)  # (M,)
    w = (n_pos > 0).to(sim.dtype)
    if weight is not None:
        w = w * weight.to(sim.dtype)
    return (per_anchor * w).sum() / w.sum().clamp(min=1e-8)

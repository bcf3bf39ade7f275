"""Dense (pixel-level) contrastive losses.

Pix2Rep (Seince et al. 2024): features of view 2 are warped onto view 1's grid (equivariance to
the spatial transform), M corresponding pixels are sampled among those seen by both views
(out-of-view pixels are masked: the authors do not), and NT-Xent runs over the 2M embeddings:
each pixel's positive is the same anatomical point in the other view, negatives all other
sampled pixels of the batch.

IDEAL (Basak et al., ICASSP 2023): dense InfoNCE after a 1x1-conv projection head; with q, k
the (aligned) query and key maps of one image and t the temperature,

    L = 1/(D_h D_w) sum_i -log( exp(q_i.k_i/t) / (exp(q_i.k_i/t) + sum_{j != i} exp(q_i.k_j/t)) ),

averaged over the batch; positions not seen by both views are dropped.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from medkit.losses.infonce import nt_xent


def sample_valid_pixels(valid: torch.Tensor, m: int, g: torch.Generator) -> torch.Tensor:
    """Flat indices (M',) into (B*H*W) of up to ``m`` pixels drawn uniformly among ``valid``."""
    flat = torch.nonzero(valid.reshape(-1).cpu()).flatten()
    if len(flat) == 0:
        raise ValueError("no pixel is seen by both views: the views do not overlap")
    pick = torch.randperm(len(flat), generator=g)[:m]
    return flat[pick].to(valid.device)


def pixel_info_nce(f1: torch.Tensor, f2_warped: torch.Tensor, valid: torch.Tensor, g: torch.Generator,
                   m: int = 1000, temperature: float = 0.53, chunk: int = 0) -> torch.Tensor:
    """Pix2Rep's pixel NT-Xent.

    Args:
        f1: (B, C, H, W) projected features of view 1.
        f2_warped: (B, C, H, W) projected features of view 2 warped onto view 1's grid
            (:func:`medkit.data.views.warp_to_view`).
        valid: (B, H, W) pixels seen by both views.
        g: generator for the pixel sample.
        m: sampled pixel pairs per batch (paper: 1000).
        temperature: t (paper: 0.53).
        chunk: > 0 computes the loss ``chunk`` anchors at a time in linear memory
            (:mod:`medkit.losses.chunked`), for large ``m``.
    """
    if f1.ndim != 4 or f1.shape != f2_warped.shape or valid.shape != (f1.shape[0], *f1.shape[2:]):
        raise ValueError(f"pixel_info_nce: f1 {tuple(f1.shape)}, f2_warped {tuple(f2_warped.shape)} "
                         f"and valid {tuple(valid.shape)} do not fit (B, C, H, W), (B, C, H, W), (B, H, W)")
    idx = sample_valid_pixels(valid, m, g)  # (M,)
    c = f1.shape[1]
    z1 = f1.permute(0, 2, 3, 1).reshape(-1, c)[idx]  # (M, C)
    z2 = f2_warped.permute(0, 2, 3, 1).reshape(-1, c)[idx]
    if chunk > 0:
        from medkit.losses.chunked import nt_xent_chunked
        return nt_xent_chunked(z1, z2, temperature, chunk)
    return nt_xent(z1, z2, temperature)


def dense_info_nce(q: torch.Tensor, k: torch.Tensor, valid: torch.Tensor | None = None,
                   temperature: float = 0.2) -> torch.Tensor:
    """IDEAL's dense InfoNCE over the positions of each image (naive form: (HW)^2 per image).

    Args:
        q: (B, C, h, w) query projections; k: (B, C, h, w) key projections aligned with q
            (same position = same image location), typically without gradient.
        valid: (B, h, w) positions seen by both views (default: all).
        temperature: t.
    """
    if q.ndim != 4 or q.shape != k.shape:
        raise ValueError(f"dense_info_nce: expected two (B, C, h, w) maps of the same shape, got "
                         f"{tuple(q.shape)} and {tuple(k.shape)}")
    b, c, h, w = q.shape
    qf = F.normalize(q.flatten(2), dim=1).transpose(1, 2)  # (B, P, C)
    kf = F.normalize(k.flatten(2), dim=1).transpose(1, 2)  # (B, P, C)
    logits = qf @ kf.transpose(1, 2) / temperature  # (B, P, P): row i, column j = q_i . k_j
    ok = torch.ones(b, h * w, dtype=torch.bool, device=q.device) if valid is None else valid.reshape(b, -1)
    if not ok.any():
        raise ValueError("dense_info_nce: no position is seen by both views")
    # invalid keys are not negatives (rows of invalid anchors stay finite and get weight 0)
    logits = logits.masked_fill(ok[:, :, None] & ~ok[:, None, :], float("-inf"))
    target = torch.arange(h * w, device=q.device).expand(b, -1)
    loss = F.cross_entropy(logits.reshape(b * h * w, -1), target.reshape(-1), reduction="none")  # (B*P,)
    weight = ok.reshape(-1).float()
    return (loss * weight).sum() / weight.sum().clamp(min=1)

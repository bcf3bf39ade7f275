"""Dense (pixel-level) contrastive loss of IDEAL (Basak et al., ICASSP 2023).

Dense InfoNCE after a 1x1-conv projection head; with q, k the (aligned) query and key maps of
one image and t the temperature,

    L = 1/(D_h D_w) sum_i -log( exp(q_i.k_i/t) / (exp(q_i.k_i/t) + sum_{j != i} exp(q_i.k_j/t)) ),

averaged over the batch; positions not seen by both views are dropped. Its linear-memory form is
:func:`medkit.losses.chunked.dense_info_nce_chunked`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


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

"""IDEAL's cross-consistency between two decoders (Basak et al., ICASSP 2023).

Two decoders of different design share one encoder. On labelled images both are trained with
cross-entropy against the mask m; on unlabelled images each decoder's hard (argmax) prediction
supervises the other, without gradient through the target (stop-gradient):

    L = CE(p1, m) + CE(p2, m)            (labelled)
    L = CE(p1, y2) + CE(p2, y1)          (unlabelled; y = argmax p, detached)

With a confidence ``threshold`` t, a pixel of decoder 1 is supervised by y2 only where decoder 2's
largest probability reaches t (and vice versa); the mean stays over all pixels:

    L = mean_pixels [max p2 >= t] CE(p1, y2) + mean_pixels [max p1 >= t] CE(p2, y1).

Unmasked (t = 0, the paper's form) on ACDC at k = 1 from random initialisation, the pseudo-labels
of the barely trained decoders are mostly background and the consistency term drives both there.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def cross_consistency(logits1: torch.Tensor, logits2: torch.Tensor,
                      labels: torch.Tensor | None = None, threshold: float = 0.0) -> torch.Tensor:
    """IDEAL's fine-tuning loss.

    Args:
        logits1, logits2: (B, K, H, W) logits of the two decoders.
        labels: (B, H, W) class indices for labelled images, or None for unlabelled ones.
        threshold: unlabelled only: the confidence a decoder's pseudo-label needs to count (0: all).
    """
    if logits1.ndim != 4 or logits1.shape != logits2.shape:
        raise ValueError(f"cross_consistency: expected two (B, K, H, W) logits of the same shape, got "
                         f"{tuple(logits1.shape)} and {tuple(logits2.shape)}")
    if labels is not None:
        if labels.shape != (logits1.shape[0], *logits1.shape[2:]):
            raise ValueError(f"cross_consistency: labels must be (B, H, W) = {(logits1.shape[0], *logits1.shape[2:])}, "
                             f"got {tuple(labels.shape)}")
        return F.cross_entropy(logits1, labels) + F.cross_entropy(logits2, labels)
    c1, y1 = logits1.detach().softmax(1).max(1)  # (B, H, W) confidence and pseudo-label, stop-gradient
    c2, y2 = logits2.detach().softmax(1).max(1)
    l1 = F.cross_entropy(logits1, y2, reduction="none") * (c2 >= threshold)  # (B, H, W)
    l2 = F.cross_entropy(logits2, y1, reduction="none") * (c1 >= threshold)
    return l1.mean() + l2.mean()

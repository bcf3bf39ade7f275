"""InfoNCE in memory linear in the number of embeddings: chunked log-sum-exp with recomputation.

The naive dense losses build a full similarity matrix: (H W)^2 entries per image for IDEAL's
dense InfoNCE, (2M)^2 for Pix2Rep's pixel NT-Xent; at 128 x 128 that is 2.7e8 entries per image,
before autograd keeps a copy for the backward pass. Here anchors are processed ``chunk`` rows
at a time and each chunk is recomputed in the backward pass (``torch.utils.checkpoint``), so
peak memory is O(chunk x K) instead of O(M x K), with the same value and gradients.
:func:`info_nce_fn` is the one switch between the naive and the chunked form (a method's
``chunk`` option).

For anchors a_i, keys k_j (L2-normalised), positive index p(i), and allowed keys A(i):

    L = mean_i [ logsumexp_{j in A(i)} (a_i . k_j / t) - a_i . k_p(i) / t ].
"""
from __future__ import annotations

from functools import partial
from typing import Callable

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from medkit.losses.dense import dense_info_nce
from medkit.losses.infonce import nt_xent


def _chunk_loss(a: torch.Tensor, k: torch.Tensor, pos: torch.Tensor, rows: torch.Tensor,
                key_ok: torch.Tensor, exclude_self: bool, temperature: float) -> torch.Tensor:
    """Summed loss of one chunk of anchors a (c, D) against all keys k (K, D)."""
    logits = a @ k.T / temperature  # (c, K)
    mask = ~key_ok[None, :].expand_as(logits)
    if exclude_self:
        mask = mask | (rows[:, None] == torch.arange(k.shape[0], device=k.device)[None, :])
    logits = logits.masked_fill(mask, float("-inf"))
    pos_logit = logits.gather(1, pos[:, None])[:, 0]  # (c,)
    return (torch.logsumexp(logits, dim=1) - pos_logit).sum()


def chunked_info_nce(anchors: torch.Tensor, keys: torch.Tensor, positive: torch.Tensor,
                     temperature: float, key_valid: torch.Tensor | None = None,
                     anchor_valid: torch.Tensor | None = None, exclude_self: bool = False,
                     chunk: int = 1024) -> torch.Tensor:
    """Mean InfoNCE over valid anchors, computed ``chunk`` anchors at a time.

    Args:
        anchors: (M, D); keys: (K, D); both are L2-normalised here.
        positive: (M,) index into keys of each anchor's positive.
        key_valid: (K,) keys allowed in every denominator (default all).
        anchor_valid: (M,) anchors that count (default all).
        exclude_self: drop key i from anchor i's denominator (NT-Xent, where keys = anchors).
        chunk: anchors per chunk; memory grows with chunk x K.
    """
    if anchors.ndim != 2 or keys.ndim != 2 or anchors.shape[1] != keys.shape[1] or positive.shape != anchors.shape[:1]:
        raise ValueError(f"chunked_info_nce: anchors {tuple(anchors.shape)}, keys {tuple(keys.shape)} and "
                         f"positive {tuple(positive.shape)} do not fit (M, D), (K, D), (M,)")
    a, k = F.normalize(anchors, dim=1), F.normalize(keys, dim=1)
    m = a.shape[0]
    key_ok = torch.ones(k.shape[0], dtype=torch.bool, device=k.device) if key_valid is None else key_valid
    idx = torch.arange(m, device=a.device)
    if anchor_valid is not None:
        idx = idx[anchor_valid]
    if len(idx) == 0:
        raise ValueError("chunked_info_nce: no valid anchor")
    total = a.new_zeros(())
    for start in range(0, len(idx), chunk):
        rows = idx[start:start + chunk]
        total = total + checkpoint(_chunk_loss, a[rows], k, positive[rows], rows, key_ok, exclude_self,
                                   temperature, use_reentrant=False)
    return total / len(idx)


def nt_xent_chunked(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.1, chunk: int = 1024) -> torch.Tensor:
    """:func:`medkit.losses.infonce.nt_xent` in linear memory (same value and gradients)."""
    if z1.ndim != 2 or z1.shape != z2.shape:
        raise ValueError(f"nt_xent_chunked: expected two (N, D) tensors of the same shape, got "
                         f"{tuple(z1.shape)} and {tuple(z2.shape)}")
    n = z1.shape[0]
    u = torch.cat([z1, z2])  # (2N, D)
    pos = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(u.device)
    return chunked_info_nce(u, u, pos, temperature, exclude_self=True, chunk=chunk)


def dense_info_nce_chunked(q: torch.Tensor, k: torch.Tensor, valid: torch.Tensor | None = None,
                           temperature: float = 0.2, chunk: int = 1024) -> torch.Tensor:
    """:func:`medkit.losses.dense.dense_info_nce` in memory linear in the positions per image."""
    if q.ndim != 4 or q.shape != k.shape:
        raise ValueError(f"dense_info_nce_chunked: expected two (B, C, h, w) maps of the same shape, got "
                         f"{tuple(q.shape)} and {tuple(k.shape)}")
    b, c, h, w = q.shape
    ok = torch.ones(b, h * w, dtype=torch.bool, device=q.device) if valid is None else valid.reshape(b, -1)
    if not ok.any():
        raise ValueError("dense_info_nce_chunked: no position is seen by both views")
    pos = torch.arange(h * w, device=q.device)
    total = q.new_zeros(())
    for i in range(b):
        if ok[i].any():
            qi, ki = q[i].reshape(c, -1).T, k[i].reshape(c, -1).T  # (P, C)
            total = total + chunked_info_nce(qi, ki, pos, temperature, ok[i], ok[i], chunk=chunk) * ok[i].sum()
    return total / ok.sum()


def info_nce_fn(kind: str, chunk: int = 0, gather_distributed: bool = False) -> Callable[..., torch.Tensor]:
    """The InfoNCE loss ``kind``: its naive form for ``chunk`` 0, else its linear-memory form with
    ``chunk`` anchors at a time (the same value and gradients).

    Args:
        kind: ``"nt_xent"``, called ``fn(z1, z2, temperature)`` with z1, z2 (N, D)
            (:func:`~medkit.losses.infonce.nt_xent`, :func:`nt_xent_chunked`), or ``"dense"``,
            called ``fn(q, k, valid, temperature)`` with q, k (B, C, h, w) and valid (B, h, w)
            (:func:`~medkit.losses.dense.dense_info_nce`, :func:`dense_info_nce_chunked`).
        chunk: 0 (or less): the naive form; above 0: anchors per chunk.
        gather_distributed: naive NT-Xent only: contrast against every process's candidates. The
            chunked forms contrast within this process's batch, the dense ones within each image.

    Example:
        >>> z1, z2 = torch.randn(6, 4), torch.randn(6, 4)
        >>> bool(torch.isclose(info_nce_fn("nt_xent", chunk=4)(z1, z2, 0.1), nt_xent(z1, z2, 0.1)))
        True
    """
    if kind == "nt_xent" and chunk > 0:
        return partial(nt_xent_chunked, chunk=chunk)
    if kind == "nt_xent":
        return partial(nt_xent, gather_distributed=gather_distributed)
    if kind == "dense":
        return partial(dense_info_nce_chunked, chunk=chunk) if chunk > 0 else dense_info_nce
    raise ValueError(f"info_nce_fn: kind must be 'nt_xent' or 'dense', got {kind!r}")

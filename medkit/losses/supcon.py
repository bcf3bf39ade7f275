"""Partition-aware global contrastive loss: Chaitanya et al.'s G^R, G^D- and G^D.

Chaitanya et al. (NeurIPS 2020, arXiv 2006.10511) split each volume into S partitions along the
slice axis; slices of the same partition in different volumes show similar anatomy. Over the
2N embeddings u of both views (L2-normalised, s_ij = u_i . u_j / t):

    L = 1/(2N) sum_i  -1/|P(i)| sum_{p in P(i)} log( exp(s_ip) / sum_{a in A(i)} exp(s_ia) )

* ``GR``  (random): P(i) = {other view of i}; A(i) = all j != i. Equal to NT-Xent (SimCLR).
* ``GD-``: as GR, but slices of i's partition from *other volumes* are removed from A(i).
* ``GD``  : as GD-, and those slices (both views) are added to P(i) and kept in A(i).

This is the mask form of the supervised contrastive loss (Khosla et al., NeurIPS 2020) with
partition-and-volume labels; it expresses all three strategies with one function.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from medkit.comm import gather, gather_nograd, local_rows
from medkit.losses._checks import same_2d
from medkit.losses._masked import masked_contrastive

STRATEGIES = ("GR", "GD-", "GD")


def partition_contrastive(z1: torch.Tensor, z2: torch.Tensor, partition: torch.Tensor,
                          volume: torch.Tensor, strategy: str = "GD",
                          temperature: float = 0.1, gather_distributed: bool = False) -> torch.Tensor:
    """Chaitanya et al.'s global loss.

    Args:
        z1, z2: (N, D) embeddings of the two views.
        partition: (N,) partition index of each slice.
        volume: (N,) volume (case) index of each slice.
        strategy: ``"GR"``, ``"GD-"`` or ``"GD"``.
        temperature: t (Chaitanya et al.: 0.1).
        gather_distributed: in a process group, contrast against the candidates (and their
            partition and volume labels) of every process; otherwise this process's only.
    """
    same_2d("partition_contrastive", z1, z2)
    n = z1.shape[0]
    if partition.shape != (n,) or volume.shape != (n,):
        raise ValueError(f"partition_contrastive: partition and volume must be ({n},), got "
                         f"{tuple(partition.shape)} and {tuple(volume.shape)}")
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    u1, u2 = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
    u = torch.cat([u1, u2])  # (2n, D): this process's anchors (n = N in one process)
    part, vol = partition.to(u.device), volume.to(u.device)  # (n,)
    if gather_distributed:
        cand = torch.cat([gather(u1), gather(u2)])  # (2N, D): the candidates of every process
        part, vol = gather_nograd(part), gather_nograd(vol)  # (N,)
        mine = local_rows(n, u.device)
    else:
        cand, mine = u, torch.arange(n, device=u.device)
    big_n = cand.shape[0] // 2
    sim = u @ cand.T / temperature  # (2n, 2N)
    part, vol = part.repeat(2), vol.repeat(2)  # (2N,)
    me = torch.cat([mine, big_n + mine])  # (2n,) each anchor's own column
    idx = torch.arange(2 * big_n, device=u.device)
    self_mask = me[:, None] == idx[None, :]
    view_pos = (me[:, None] % big_n == idx[None, :] % big_n) & ~self_mask  # the other view
    cross = (part[me][:, None] == part[None, :]) & (vol[me][:, None] != vol[None, :])  # same partition, other volume
    positives = view_pos | (cross if strategy == "GD" else torch.zeros_like(cross))
    allowed = ~self_mask & ~(cross if strategy == "GD-" else torch.zeros_like(cross))
    return masked_contrastive(sim, positives, allowed)

"""InfoNCE family: NT-Xent (SimCLR) and MoCo's queue InfoNCE.

NT-Xent (Chen et al., ICML 2020, "SimCLR"): for 2N L2-normalised embeddings u (both views),
with s_ij = u_i . u_j / t,

    L = 1/(2N) sum_i -log( exp(s_{i,p(i)}) / sum_{a != i} exp(s_ia) ),

where p(i) is the other view of sample i.

MoCo InfoNCE (He et al., CVPR 2020; v2: Chen et al. 2020): query q (N, D), positive key k
(N, D) from the momentum encoder, negatives from a queue (K, D), all L2-normalised:

    logits = [q.k, q.queue^T] / t  (N, 1+K),   L = CE(logits, 0).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from medkit.comm import gather, local_rows
from medkit.losses._checks import same_2d


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.1,
            gather_distributed: bool = False) -> torch.Tensor:
    """NT-Xent over the two views of a batch (SimCLR; Chaitanya et al.'s G^R).

    Args:
        z1, z2: (n, D) embeddings of view 1 and view 2 of the same n samples.
        temperature: t (SimCLR 0.5 at large batch; Chaitanya et al. 0.1).
        gather_distributed: in a process group, contrast this process's anchors against the
            candidates of every process (the global batch of N = W n samples); otherwise each
            process contrasts only its own n samples, whatever the process group.

    Example:
        >>> z = torch.randn(4, 8)
        >>> float(nt_xent(z, z, 0.1)) < float(nt_xent(z, torch.randn(4, 8), 0.1))
        True
    """
    same_2d("nt_xent", z1, z2)
    n = z1.shape[0]
    u1, u2 = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
    u = torch.cat([u1, u2])  # (2n, D): this process's anchors
    if gather_distributed:
        cand = torch.cat([gather(u1), gather(u2)])  # (2N, D): every process's (N = n in one process)
        mine = local_rows(n, u.device)  # this process's rows among the N
    else:
        cand, mine = u, torch.arange(n, device=u.device)  # (2n, D), (n,)
    big_n = cand.shape[0] // 2
    me = torch.cat([mine, big_n + mine])  # (2n,) each anchor's own column
    sim = (u / temperature) @ cand.T  # (2n, 2N); scaling the 2n x D side, not the 2n x 2N one
    sim = sim.index_put((torch.arange(2 * n, device=u.device), me), sim.new_tensor(float("-inf")))
    target = torch.cat([big_n + mine, mine])  # p(i): the other view
    return F.cross_entropy(sim, target)


def moco_info_nce(q: torch.Tensor, k: torch.Tensor, queue: torch.Tensor,
                  temperature: float = 0.2) -> torch.Tensor:
    """MoCo's InfoNCE: positive key k, negatives from the queue.

    Args:
        q: (N, D) queries; k: (N, D) keys (no gradient is taken through them here: pass
            ``k.detach()`` or keys from the momentum encoder); queue: (K, D).
        temperature: t (MoCo v2: 0.2).
    """
    same_2d("moco_info_nce", q, k)
    if queue.ndim != 2 or queue.shape[1] != q.shape[1]:
        raise ValueError(f"moco_info_nce: queue must be (K, {q.shape[1]}), got {tuple(queue.shape)}")
    q, k, queue = F.normalize(q, dim=1), F.normalize(k, dim=1), F.normalize(queue, dim=1)
    logits = torch.cat([(q * k).sum(1, keepdim=True), q @ queue.T], dim=1) / temperature  # (N, 1+K)
    return F.cross_entropy(logits, torch.zeros(len(q), dtype=torch.long, device=q.device))

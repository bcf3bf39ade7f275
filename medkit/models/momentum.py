"""MoCo's helpers: an exponential-moving-average copy of a network and a queue of keys.

He et al., CVPR 2020: theta_k <- m theta_k + (1 - m) theta_q (m = 0.999); keys of each batch are
enqueued and the oldest dequeued, giving K negatives without a large batch.
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn


def momentum_copy(net: nn.Module) -> nn.Module:
    """A frozen copy of ``net`` to be updated by :func:`ema_update` only."""
    twin = copy.deepcopy(net)
    for p in twin.parameters():
        p.requires_grad_(False)
    return twin


@torch.no_grad()
def ema_update(online: nn.Module, target: nn.Module, m: float) -> None:
    """theta_target <- m theta_target + (1 - m) theta_online (buffers copied)."""
    # one fused call per kind instead of one small op per tensor (hundreds per step)
    torch._foreach_lerp_(list(target.parameters()), [p.detach() for p in online.parameters()], 1 - m)
    bt, bo = list(target.buffers()), list(online.buffers())
    if bt:
        torch._foreach_copy_(bt, bo)


class Queue(nn.Module):
    """A FIFO queue of K L2-normalised keys (K, D), kept as buffers so it is checkpointed."""

    def __init__(self, size: int, dim: int) -> None:
        super().__init__()
        self.register_buffer("keys", F.normalize(torch.randn(size, dim), dim=1))
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def push(self, k: torch.Tensor) -> None:
        """Enqueue keys (N, D), overwriting the oldest."""
        n, size = k.shape[0], self.keys.shape[0]
        idx = (self.ptr + torch.arange(n, device=k.device)) % size
        self.keys[idx] = F.normalize(k.detach(), dim=1).to(self.keys.dtype)
        self.ptr.fill_(int((self.ptr + n) % size))

"""All-gather with and without gradient, and the rank arithmetic that goes with it.

With gradients flowing back through :func:`gather` (all-gather forward, reduce-scatter backward)
and DistributedDataParallel's gradient average, the gradient of a loss computed on gathered
candidates equals the single-process gradient of the global-batch loss
(``tests/engine/test_distributed.py`` checks losses and gradients against one process).
"""
from __future__ import annotations

import warnings

import torch
import torch.distributed as dist


def active() -> bool:
    """True inside an initialised process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def gather(x: torch.Tensor) -> torch.Tensor:
    """(n, ...) in each of W processes -> (W*n, ...) in rank order, with gradient to each process's
    own part (all-gather; its backward sums the gradients of every process's loss)."""
    if not active():
        return x
    from torch.distributed.nn.functional import all_gather
    with warnings.catch_warnings():  # deprecated for a private successor; still the public autograd gather
        warnings.simplefilter("ignore", FutureWarning)
        parts = all_gather(x.contiguous())
    # gloo sends the raw memory of the incoming gradients: a transposed (non-contiguous) gradient
    # would be sent in the wrong order, so make each one contiguous first
    return torch.cat([_ContiguousGrad.apply(p) for p in parts], dim=0)


class _ContiguousGrad(torch.autograd.Function):
    """Identity whose backward makes the gradient contiguous."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return grad.contiguous()


@torch.no_grad()
def gather_nograd(x: torch.Tensor) -> torch.Tensor:
    """As :func:`gather`, without gradient (MoCo keys, labels of the candidates)."""
    if not active():
        return x
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts, dim=0)


def local_rows(n: int, device: torch.device | None = None) -> torch.Tensor:
    """Indices (n,) of this process's n rows in a gathered (W*n, ...) tensor."""
    return rank() * n + torch.arange(n, device=device)


def mean_over_processes(x: torch.Tensor) -> torch.Tensor:
    """The mean of a (detached) scalar over processes, for logging the global-batch loss."""
    if not active():
        return x
    y = x.detach().clone()
    dist.all_reduce(y)
    return y / dist.get_world_size()

"""Several processes, one global batch: pretraining under ``torchrun`` with DistributedDataParallel.

``torchrun --nproc_per_node N -m medkit pretrain ...`` starts N processes; each takes its shard of
the same global batch (``--batch-size`` stays the global size), DDP averages the gradients, and
the contrastive losses see the whole global batch through :func:`gather`:

* NT-Xent (SimCLR, Pix2Rep's pixels) and Chaitanya's partition loss: each process's anchors are
  contrasted against the candidates of every process;
* MoCo: the keys of every process enter the (identical) queue of every process;
* ZCA / IterNorm whitening: the batch mean and covariance are those of the global batch.

With gradients flowing back through :func:`gather` (all-gather forward, reduce-scatter backward)
and DDP's gradient average, the gradient equals the single-process gradient of the global-batch
loss (``tests/test_distributed.py`` checks losses and gradients against one process). BatchNorm
layers become SyncBatchNorm on CUDA; on the CPU (gloo) they keep per-process statistics.
IDEAL's dense loss contrasts positions within each image and needs no gathering; Pix2Rep's
Barlow Twins variant and the chunked (linear-memory) losses keep per-process candidates.
Only the main process writes the run folder; logged losses are means over processes.

Outside ``torchrun`` (no ``WORLD_SIZE`` in the environment) every function is the identity.
"""
from __future__ import annotations

import os
import warnings

import torch
import torch.distributed as dist


def setup(device: torch.device) -> tuple[int, int]:
    """Join the process group torchrun describes (gloo on CPU, NCCL on CUDA): (rank, world size).

    (0, 1) when not launched by torchrun.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return 0, 1
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend)
    return dist.get_rank(), dist.get_world_size()


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def is_main() -> bool:
    """True in the process that writes run folders (rank 0, or the only process)."""
    return rank() == 0


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


def on_main(fn):
    """Run ``fn()`` in the main process only and give every process its result; a
    :class:`~medkit.errors.MedkitError` raised there is raised in every process (none hangs)."""
    if not active():
        return fn()
    from medkit.errors import MedkitError
    box = [None, None]
    if is_main():
        try:
            box[0] = fn()
        except MedkitError as e:
            box[1] = str(e)
    dist.broadcast_object_list(box, src=0)
    if box[1] is not None:
        raise MedkitError(box[1])
    return box[0]


def barrier() -> None:
    if active():
        dist.barrier()


def cleanup() -> None:
    """Leave the process group once every process is done with it (tearing gloo down while
    another process still talks to it aborts with "terminate called without an active exception")."""
    if dist.is_available() and dist.is_initialized():
        import gc
        gc.collect()  # DDP reducers hold work on the group: free them first
        dist.barrier()
        dist.destroy_process_group()

"""Several processes, one global batch: the process group and DDP around a pretraining run.

``torchrun --nproc_per_node N -m medkit pretrain ...`` starts N processes; each takes its shard of
the same global batch (``--batch-size`` stays the global size) and DDP averages the gradients.
Whether the contrastive losses see the whole global batch is the method's explicit choice: the
pretraining workflow builds the method with ``gather_distributed=True`` when it runs in more than
one process, and the method passes that flag to its losses and whitening layer, which then call
:mod:`medkit.comm` (NT-Xent and Chaitanya's partition loss contrast against every process's
candidates; MoCo's queue takes every process's keys; whitening uses the global batch's mean and
covariance). BatchNorm layers become SyncBatchNorm on CUDA; on the CPU (gloo) they keep
per-process statistics. Only the main process writes the run folder.

Outside ``torchrun`` (no ``WORLD_SIZE`` in the environment) every function here is trivial.
"""
from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch import nn

from medkit.comm import active, rank
from medkit.errors import MedkitError


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


def is_main() -> bool:
    """True in the process that writes run folders (rank 0, or the only process)."""
    return rank() == 0


def wrap(model: nn.Module, device: torch.device, channels_last: bool) -> nn.Module:
    """``model`` inside DistributedDataParallel (SyncBatchNorm on CUDA) when several processes run;
    ``model`` itself otherwise. The returned module's ``forward`` is what each step calls."""
    if not active():
        return model
    from torch.nn.parallel import DistributedDataParallel
    if device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None,
                                   find_unused_parameters=True)


def on_main(fn):
    """Run ``fn()`` in the main process only and give every process its result; a
    :class:`~medkit.errors.MedkitError` raised there is raised in every process (none hangs)."""
    if not active():
        return fn()
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

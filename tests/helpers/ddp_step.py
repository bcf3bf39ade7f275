"""One training step's loss and gradients on a fixed global batch, in one process or as one of
several under torchrun (each process takes its shard). Used by tests/engine/test_distributed.py:

    python tests/helpers/ddp_step.py OUT.pt                       # one process, the whole batch
    torchrun --nproc_per_node 2 tests/helpers/ddp_step.py OUT.pt  # two processes, gloo

Views are deterministic (view 1 the slice, view 2 a fixed gamma) and BatchNorm uses running
statistics, so that the only difference between the two runs is how the batch is split: what
the gathered losses, the MoCo queue and the whitening must make irrelevant.
"""
from __future__ import annotations

import sys

import torch
from torch import nn

from medkit.comm import mean_over_processes
from medkit.data.augment import AugmentConfig
from medkit.data.views import ViewConfig
from medkit.engine import distributed
from medkit.methods import build_method
from medkit.data.batches import Batch, shard

FIXED = dict(crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), rotate=0.0, flip=False)
V1 = ViewConfig(**FIXED, intensity=AugmentConfig(gamma=(1.0, 1.0), contrast=(1.0, 1.0), brightness=0.0, noise=0.0))
V2 = ViewConfig(**FIXED, intensity=AugmentConfig(gamma=(1.4, 1.4), contrast=(0.8, 0.8), brightness=0.0, noise=0.0))
CASES = {"simclr": {}, "moco_v2": {"queue": 64}, "whitened_moco": {"queue": 64, "whitening": "zca"},
         "chaitanya_GD": {"strategy": "GD"}, "chaitanya_GD-": {"strategy": "GD-"}, "simclr_per_process": {}}


def run(out: str) -> None:
    rank, world = distributed.setup(torch.device("cpu"))
    torch.manual_seed(0)
    images = torch.rand(16, 1, 32, 32)
    batch = Batch(images, torch.arange(16) % 4, torch.arange(16) // 4)  # 4 volumes x 4 partitions
    results = {}
    for case, options in CASES.items():
        torch.manual_seed(1)
        gather = world > 1 and case != "simclr_per_process"  # gathering is asked for, never implied
        m = build_method("moco_v2" if "moco" in case else case.split("_")[0], options, gather_distributed=gather)
        m.views = (V1, V2)
        m.train()
        for mod in m.modules():
            if isinstance(mod, nn.modules.batchnorm._BatchNorm):
                mod.eval()
        net = nn.parallel.DistributedDataParallel(m, find_unused_parameters=True) if world > 1 else m
        terms = net(shard(batch, rank, world), torch.Generator().manual_seed(0), 0)
        terms["loss"].backward()
        grads = torch.cat([p.grad.flatten() for p in m.parameters() if p.grad is not None])
        results[case] = {"loss": float(mean_over_processes(terms["loss"].detach())), "grad": grads,
                         "queue": m.queue.keys.clone() if hasattr(m, "queue") else None}
        del net, terms  # no DDP reducer outlives its case
    if distributed.is_main():
        torch.save({"world": world, **results}, out)
    distributed.cleanup()


if __name__ == "__main__":
    run(sys.argv[1])

"""MoCo v2 (Chen et al. 2020, arXiv 2003.04297) on the U-Net encoder, symmetrised.

Query encoder f_q (U-Net encoder, pooled bottleneck h, optional whitening, MLP projector) and a
momentum copy f_k; keys of each batch enter a queue of negatives:

    L = InfoNCE(q1, k2, queue) + InfoNCE(q2, k1, queue),   theta_k <- m theta_k + (1 - m) theta_q.

Both views go through the query encoder (the symmetric form), which Med-MoCo's local loss needs:
its regions are pooled from an early map of each view with gradient.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from medkit.data.views import ViewConfig, make_views
from medkit.distributed import gather_nograd
from medkit.errors import MedkitError
from medkit.losses.infonce import moco_info_nce
from medkit.losses.local import medmoco_local
from medkit.methods.base import Batch, Method, unet
from medkit.models.heads import projection_mlp
from medkit.models.momentum import Queue, ema_update, momentum_copy
from medkit.models.whitening import Whitening


@dataclass(frozen=True)
class MoCoConfig:
    """MoCo v2, with Med-MoCo's two cures as switches.

    Paper (Hassanpour et al., GPU): ResNet-50, projector 2048-2048-128, queue 65536, momentum
    0.999, temperature 0.2, SGD lr 0.03, batch 128, crop scale (0.2, 1); local loss weight 0.5
    on 20 regions; ZCA whitening before the projector.
    CPU demo default: the kit's U-Net, projector 256-256-128, queue 4096, momentum 0.99 (short
    schedules), temperature 0.2, whitening in 32 groups of 8 channels (small CPU batches; a GPU
    batch of 128 affords groups of 64 or more).
    """

    channels: tuple[int, ...] = (16, 32, 64, 128, 256)
    proj_hidden: int = 256
    proj_dim: int = 128
    queue: int = 4096
    momentum: float = 0.99
    temperature: float = 0.2
    crop_scale: tuple[float, float] = (0.2, 1.0)
    local: bool = False
    local_weight: float = 0.5
    local_map: str = "enc0"
    n_regions: int = 20
    region_size: float = 0.15
    zca: bool = False
    whitening: str = "zca"  # "zca" (eigendecomposition) or "iternorm"
    whitening_groups: int = 32  # 256 / 32 = 8 channels per group: needs a batch above 8

    def __post_init__(self) -> None:
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum}")
        if self.zca and self.channels[-1] % self.whitening_groups:
            raise ValueError(f"whitening_groups {self.whitening_groups} must divide {self.channels[-1]} channels")
        if self.whitening not in ("zca", "iternorm"):
            raise ValueError(f"whitening must be 'zca' or 'iternorm', got {self.whitening!r}")


class Encoder(nn.Module):
    """U-Net encoder -> pooled h -> (whitening) -> projector z."""

    def __init__(self, cfg: MoCoConfig) -> None:
        super().__init__()
        self.net = unet(cfg.channels)
        d = cfg.channels[-1]
        self.whiten = Whitening(d, cfg.whitening_groups, cfg.whitening) if cfg.zca else nn.Identity()
        self.projector = projection_mlp((d, cfg.proj_hidden, cfg.proj_dim))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        enc = self.net.encode(x)
        h = enc[-1].mean((2, 3))  # (B, C)
        return h, self.projector(self.whiten(h)), enc


class MoCo(Method):
    name = "moco_v2"

    def __init__(self, cfg: MoCoConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.query = Encoder(cfg)
        self.key = momentum_copy(self.query)
        self.queue = Queue(cfg.queue, cfg.proj_dim)
        v = ViewConfig(crop_scale=cfg.crop_scale)
        self.views = (v, v)

    @property
    def net(self) -> nn.Module:
        return self.query.net

    def loss(self, batch: Batch, g: torch.Generator, step: int) -> dict[str, torch.Tensor]:
        v = make_views(batch.images, *self.views, g)
        _, q1, enc1 = self.query(v.x1)
        _, q2, enc2 = self.query(v.x2)
        with torch.no_grad():
            k1, k2 = self.key(v.x1)[1], self.key(v.x2)[1]  # (B, D)
        queue = self.queue.keys.clone()
        glob = 0.5 * (moco_info_nce(q1, k2, queue, self.cfg.temperature)
                      + moco_info_nce(q2, k1, queue, self.cfg.temperature))
        self.queue.push(torch.cat([gather_nograd(k1), gather_nograd(k2)]))  # every process's keys
        out = {"global": glob}
        loss = glob
        if self.cfg.local:
            level = int(self.cfg.local_map[3:])
            loc = medmoco_local(enc1[level], enc2[level], v.theta1, v.theta2, g, self.cfg.n_regions,
                                self.cfg.region_size, self.cfg.temperature)
            out["local"] = loc
            loss = loss + self.cfg.local_weight * loc
        out["loss"] = loss
        return out

    def check_batch(self, batch_size: int) -> None:
        group = self.cfg.channels[-1] // self.cfg.whitening_groups
        if self.cfg.zca and batch_size <= group:
            raise MedkitError(f"--batch-size {batch_size} is too small to whiten groups of {group} channels: "
                              f"use a batch above {group} or raise whitening_groups")

    def after_step(self) -> None:
        ema_update(self.query, self.key, self.cfg.momentum)

    @torch.no_grad()
    def embed(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h, z, _ = self.query(x)
        return {"h": h, "z": z}


class MedMoCo(MoCo):
    """Med-MoCo (Hassanpour et al. 2024): MoCo v2 + local loss + ZCA whitening, both on by default."""

    name = "med_moco"

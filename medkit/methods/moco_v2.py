"""MoCo v2 (Chen et al. 2020, arXiv 2003.04297) on the U-Net encoder, symmetrised.

Query encoder f_q (U-Net encoder, pooled bottleneck h, optional whitening, MLP projector) and a
momentum copy f_k (:class:`~medkit.methods.momentum.MomentumMethod`); keys of each batch enter a
queue of negatives:

    L = InfoNCE(q1, k2, queue) + InfoNCE(q2, k1, queue),   theta_k <- m theta_k + (1 - m) theta_q.

Both views go through the query encoder (the symmetric form), which Med-MoCo's local loss needs:
its regions are pooled from an early map of each view with gradient.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from medkit.comm import gather_nograd
from medkit.data.regions import aligned_regions, pool_at
from medkit.data.views import ViewConfig, make_views
from medkit.errors import MedkitError
from medkit.losses.infonce import moco_info_nce
from medkit.losses.local import medmoco_local
from medkit.data.batches import Batch
from medkit.methods.base import pooled, same_views, unet
from medkit.methods.momentum import MomentumMethod
from medkit.models.heads import projection_mlp
from medkit.models.momentum import Queue
from medkit.models.unet import DEFAULT_CHANNELS
from medkit.models.whitening import Whitening


WHITENING = ("none", "zca", "iternorm")  # of h before the projector (medkit.models.whitening)


@dataclass(frozen=True)
class MoCoConfig:
    """MoCo v2, with Med-MoCo's two cures as switches.

    Paper (Hassanpour et al., GPU): ResNet-50, projector 2048-2048-128, queue 65536, momentum
    0.999, temperature 0.2, SGD lr 0.03, batch 128, crop scale (0.2, 1); local loss weight 0.5
    on 20 regions; ZCA whitening before the projector.
    CPU demo default: the kit's U-Net, projector 256-256-128, queue 4096, momentum 0.99 (short
    schedules), temperature 0.2, whitening in 32 groups of 8 channels (small CPU batches; a GPU
    batch of 128 affords groups of 64 or more).
    Transfer for fine-tuning: both variants train the encoder only (the local loss reads an encoder
    map), so ``--transfer all`` and ``encoder`` both start from the pretrained encoder and an
    untrained decoder. Measured on ACDC at 64 px (10 pairs per k, ``papermill_runs/reference``):
    Med-MoCo +0.045 [+0.032, +0.063] Dice over random at k = 1 (10 of 10 pairs) and +0.035
    [+0.022, +0.052] at k = 2; MoCo v2 -0.013 [-0.031, +0.009] and -0.010 [-0.023, +0.015], inside
    the noise.
    """

    channels: tuple[int, ...] = DEFAULT_CHANNELS
    proj_hidden: int = 256
    proj_dim: int = 128
    queue: int = 4096
    momentum: float = 0.99
    temperature: float = 0.2
    crop_scale: tuple[float, float] = (0.2, 1.0)
    local: bool = False
    local_weight: float = 0.5
    encoder_level: int = 0  # the local loss reads the encoder map enc{encoder_level} (0: the first, 1/2 resolution)
    n_regions: int = 20
    region_fraction: float = 0.15  # side of a local region, as a fraction of the view's side
    whitening: str = "none"  # of h before the projector: "none", "zca" (eigendecomposition) or "iternorm"
    whitening_groups: int = 32  # 256 / 32 = 8 channels per group: needs a batch above 8

    def __post_init__(self) -> None:
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum}")
        if self.whitening not in WHITENING:
            raise ValueError(f"whitening must be one of {', '.join(map(repr, WHITENING))}, got {self.whitening!r}")
        if self.whitening != "none" and self.whitening_groups > 0 and self.channels[-1] % self.whitening_groups:
            raise ValueError(f"whitening_groups {self.whitening_groups} must divide {self.channels[-1]} channels")
        if not 0 <= self.encoder_level < len(self.channels):
            raise ValueError(f"encoder_level must be an encoder level 0..{len(self.channels) - 1}, "
                             f"got {self.encoder_level}")
        if not self.region_fraction < 1:
            raise ValueError(f"region_fraction must be below 1 (a fraction of the view's side), "
                             f"got {self.region_fraction}")


def local_region_loss(f1: torch.Tensor, f2: torch.Tensor, theta1: torch.Tensor, theta2: torch.Tensor,
                      g: torch.Generator, n_regions: int = 20, size: float = 0.2,
                      temperature: float = 0.2) -> torch.Tensor:
    """Med-MoCo's local loss on two views' early feature maps: regions seen by both views, pooled
    at the same image location in each (:mod:`medkit.data.regions`), contrasted by
    :func:`medkit.losses.local.medmoco_local`.

    Args:
        f1, f2: (B, C, h, w) early maps of view 1 and view 2 (trainable layers).
        theta1, theta2: (B, 2, 3) view -> source maps of the two views.
        g: generator for the region positions.
        n_regions: regions per image (paper: 20).
        size: side of a region as a fraction of view 1's side (the config's ``region_fraction``;
            0.2: a fifth of the view).
        temperature: t.
    """
    if f1.ndim != 4 or f2.ndim != 4 or f1.shape[:2] != f2.shape[:2]:
        raise ValueError(f"local_region_loss: expected (B, C, h, w) maps with equal B and C, got "
                         f"{tuple(f1.shape)} and {tuple(f2.shape)}")
    c1, _, valid = aligned_regions(f1.shape[0], n_regions, theta1, theta2, g, size)  # (B, R, 2), (B, R)
    e1 = pool_at(f1, c1, None, None, size)  # (B, R, C) at view-1 positions
    e2 = pool_at(f2, c1, theta1, theta2, size)  # (B, R, C): the same image locations, in view 2
    return medmoco_local(e1, e2, valid, temperature)


class Encoder(nn.Module):
    """U-Net encoder -> pooled h -> (whitening) -> projector z."""

    def __init__(self, cfg: MoCoConfig, gather_distributed: bool = False) -> None:
        super().__init__()
        self.net = unet(cfg.channels)
        d = cfg.channels[-1]
        self.whiten = (Whitening(d, cfg.whitening_groups, cfg.whitening, gather_distributed=gather_distributed)
                       if cfg.whitening != "none" else nn.Identity())
        self.projector = projection_mlp((d, cfg.proj_hidden, cfg.proj_dim))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        enc = self.net.encode(x)  # [(B, C_l, h_l, w_l)] per level
        h = pooled(enc[-1])  # (B, C)
        return h, self.projector(self.whiten(h)), enc


class MoCo(MomentumMethod):
    name = "moco_v2"

    def __init__(self, cfg: MoCoConfig, gather_distributed: bool = False) -> None:
        super().__init__(Encoder(cfg, gather_distributed), cfg.momentum, gather_distributed)
        self.cfg = cfg
        self.queue = Queue(cfg.queue, cfg.proj_dim)
        self.views = same_views(ViewConfig(crop_scale=cfg.crop_scale))

    def loss(self, batch: Batch, g: torch.Generator, step: int) -> dict[str, torch.Tensor]:
        v = make_views(batch.images, *self.views, g)
        _, q1, enc1 = self.query(v.x1)
        _, q2, enc2 = self.query(v.x2)
        with torch.no_grad():
            k1, k2 = self.key(v.x1)[1], self.key(v.x2)[1]  # (B, D)
        queue = self.queue.keys.clone()
        glob = 0.5 * (moco_info_nce(q1, k2, queue, self.cfg.temperature)
                      + moco_info_nce(q2, k1, queue, self.cfg.temperature))
        if self.gather_distributed:  # every process's keys enter every process's (identical) queue
            k1, k2 = gather_nograd(k1), gather_nograd(k2)
        self.queue.push(torch.cat([k1, k2]))  # (2B, D)
        out = {"global": glob}
        loss = glob
        if self.cfg.local:
            level = self.cfg.encoder_level
            loc = local_region_loss(enc1[level], enc2[level], v.theta1, v.theta2, g, self.cfg.n_regions,
                                    self.cfg.region_fraction, self.cfg.temperature)
            out["local"] = loc
            loss = loss + self.cfg.local_weight * loc
        out["loss"] = loss
        return out

    def chance(self, batch_size: int, image_size: int) -> dict[str, float]:
        # global: the key and the queue; local: the other 2R - 1 regions of the image in both views
        return {"global": math.log(1 + self.cfg.queue), "local": math.log(2 * self.cfg.n_regions - 1)}

    def check_batch(self, batch_size: int) -> None:
        super().check_batch(batch_size)
        group = self.cfg.channels[-1] // self.cfg.whitening_groups
        if self.cfg.whitening != "none" and batch_size <= group:
            raise MedkitError(f"batch_size {batch_size} is too small to whiten groups of {group} channels: "
                              f"use a batch above {group} or raise whitening_groups")

    @torch.no_grad()
    def embed(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h, z, _ = self.query(x)
        return {"h": h, "z": z}


class MedMoCo(MoCo):
    """Med-MoCo (Hassanpour et al. 2024): MoCo v2 + local loss + ZCA whitening, both on by default."""

    name = "med_moco"

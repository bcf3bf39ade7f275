"""Chaitanya et al. (NeurIPS 2020): global contrastive loss with domain-specific positives,
then (optionally) a local loss that pretrains the decoder with the encoder frozen.

Stage 1 (``global_steps``): h = bottleneck of the encoder, z = MLP(h); partition-aware loss
G^R | G^D- | G^D over a batch of m volumes x one slice per partition.
Stage 2 (the remaining steps, if ``local`` is on): encoder frozen; the decoder up to the map
``dec{decoder_level}`` and a head of two 1x1 convs are trained with the local loss L^l (or L^D) on
two intensity-only views (regions at the same place).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from medkit.data.views import INTENSITY_ONLY, ViewConfig, make_views
from medkit.losses.local import RegionGrid, chaitanya_local
from medkit.losses.supcon import STRATEGIES, partition_contrastive
from medkit.data.batches import Batch
from medkit.methods.base import Method, same_views, unet
from medkit.models.heads import projection_conv, projection_mlp
from medkit.models.unet import DEFAULT_CHANNELS


@dataclass(frozen=True)
class ChaitanyaConfig:
    """Chaitanya et al.'s global (+ local) pretraining.

    Paper (GPU): 6-level U-Net 16-32-64-128-128-128, global head flatten-1024-128, temperature
    0.1, 10,000 iterations per stage, batch 12 (m = 3 volumes x 4 partitions); local: 13 regions
    of 3 x 3 on a 1/4-resolution decoder map, 5 neighbours as negatives.
    CPU demo default: the kit's U-Net, pooled global head 256-256-128, the same losses; the
    local stage takes the steps after ``global_steps``, on the 1/2-resolution decoder map (dec0:
    32 x 32 at 64 px, near the paper's 48 x 48).
    L^l is a trivial task here: its two views are aligned intensity-only augmentations of one
    slice, so region i of one view is nearly the same vector as region i of the other whatever
    the layout. Measured on ACDC from the campaign's G^D encoder (batch 32, lr 1e-3), the loss
    after 40 local steps against its chance value ln 11 = 2.40: 0.004 with the paper's layout at
    64 px, 0.002 with touching regions (``region_spacing=3``), 0.002 and 0.002 at 128 px, 0.007
    with 36 touching regions and 8 negatives at 128 px; the pretraining workflow warns about such
    terms (``trivial_terms`` in its summary). L^D (``local_strategy="LD"``), whose positives
    include region i of same-partition slices of other volumes, stays at 2.71 after 40 steps at
    64 and at 128 px: a real task, and the campaign's choice.
    Transfer for fine-tuning: with the local stage the decoder is pretrained, so ``--transfer all``
    starts from it (``papermill_runs/reference/acdc_chaitanya_ideal``, 10 pairs per k, 64 px,
    G^D 500 steps + local 300). With L^D: +0.029 [+0.010, +0.048] Dice over random at k = 1 (9/10
    pairs) and +0.019 [+0.008, +0.034] at k = 2; with the trivial L^l it was +0.018 [-0.001,
    +0.044] at k = 1, inside the noise, and +0.015 [+0.003, +0.031] at k = 2.
    """

    channels: tuple[int, ...] = DEFAULT_CHANNELS
    strategy: str = "GD"
    temperature: float = 0.1
    proj_hidden: int = 256
    proj_dim: int = 128
    global_steps: int = 10**9  # all steps are global unless local is on
    local: bool = False
    local_strategy: str = "Ll"  # "Ll" or "LD"
    decoder_level: int = 0  # the local stage's decoder map dec{decoder_level}: 1/2**(level+1) resolution (paper: 1/4)
    n_regions: int = 13
    region_px: int = 3  # side of a local region, in pixels of that map
    region_spacing: int = 0  # pixels between neighbouring regions; 0: spread over the map (paper)
    n_neg: int = 5
    crop_scale: tuple[float, float] = (0.25, 0.6)  # "about half the image side"

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}, got {self.strategy!r}")
        if self.local_strategy not in ("Ll", "LD"):
            raise ValueError(f"local_strategy must be 'Ll' or 'LD', got {self.local_strategy!r}")
        if not 0 <= self.decoder_level <= len(self.channels) - 2:
            raise ValueError(f"decoder_level must be a decoder level 0..{len(self.channels) - 2}, "
                             f"got {self.decoder_level}")


class Chaitanya(Method):
    name = "chaitanya"

    def __init__(self, cfg: ChaitanyaConfig, gather_distributed: bool = False) -> None:
        super().__init__(gather_distributed)
        self.cfg = cfg
        self.net = unet(cfg.channels)
        self.projector = projection_mlp((cfg.channels[-1], cfg.proj_hidden, cfg.proj_dim))
        c = cfg.channels[cfg.decoder_level]  # dec{k} has encoder level k's width
        self.local_head = projection_conv((c, c, c))
        self.grid = RegionGrid(cfg.n_regions, cfg.region_px, cfg.region_spacing)  # the local loss's regions
        self.views = same_views(ViewConfig(crop_scale=cfg.crop_scale, flip=False))

    def chance(self, batch_size: int, image_size: int) -> dict[str, float]:
        # global: the other 2B - 1 embeddings; local: the positive and n_neg neighbours in each view
        # (L^D adds same-partition regions of other volumes: its chance is higher, this a lower bound)
        return {"global": math.log(2 * batch_size - 1), "local": math.log(2 * self.cfg.n_neg + 1)}

    def structured_batches(self) -> bool:
        return self.cfg.strategy != "GR" or (self.cfg.local and self.cfg.local_strategy == "LD")

    def loss(self, batch: Batch, g: torch.Generator, step: int) -> dict[str, torch.Tensor]:
        if self.cfg.local and step >= self.cfg.global_steps:
            return self._local(batch, g)
        v = make_views(batch.images, *self.views, g)
        h1, h2 = self.h(v.x1), self.h(v.x2)  # (B, C)
        g_loss = partition_contrastive(self.projector(h1), self.projector(h2), batch.partition,
                                       batch.volume, self.cfg.strategy, self.cfg.temperature,
                                       gather_distributed=self.gather_distributed)
        return {"loss": g_loss, "global": g_loss}

    def _local(self, batch: Batch, g: torch.Generator) -> dict[str, torch.Tensor]:
        v = make_views(batch.images, INTENSITY_ONLY, INTENSITY_ONLY, g)
        maps = []
        for x in (v.x1, v.x2):
            with torch.no_grad():  # the encoder is frozen in the local stage
                enc = self.net.encode(x)
            maps.append(self.local_head(self.net.features_from(enc)[f"dec{self.cfg.decoder_level}"]))  # (B, C, h, w)
        ld = self.cfg.local_strategy == "LD"
        l_loss = chaitanya_local(maps[0], maps[1], self.grid, self.cfg.n_neg, self.cfg.temperature,
                                 batch.partition if ld else None, batch.volume if ld else None)
        return {"loss": l_loss, "local": l_loss}

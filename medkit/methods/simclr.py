"""SimCLR (Chen et al., ICML 2020) on the U-Net encoder.

h = global average of the bottleneck map, z = MLP(h); NT-Xent between the two views' z.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from medkit.data.views import ViewConfig, make_views
from medkit.losses.infonce import nt_xent
from medkit.data.batches import Batch
from medkit.methods.base import Method, same_views, unet
from medkit.models.heads import projection_mlp
from medkit.models.unet import DEFAULT_CHANNELS


@dataclass(frozen=True)
class SimCLRConfig:
    """SimCLR.

    Paper (ImageNet, GPU): ResNet-50, projector 2048-2048-128, temperature 0.5 at batch 4096.
    CPU demo default: the kit's U-Net (16-256), projector 256-256-128, temperature 0.1.
    Transfer for fine-tuning: the loss trains the encoder only, so ``--transfer all`` and ``encoder``
    both start from the pretrained encoder and an untrained decoder. Measured on ACDC at 64 px (10
    pairs per k, ``papermill_runs/reference/acdc_global``): -0.001 [-0.033, +0.022] Dice over random
    at k = 1, inside the noise, and +0.011 [+0.003, +0.031] at k = 2.
    """

    channels: tuple[int, ...] = DEFAULT_CHANNELS
    proj_hidden: int = 256
    proj_dim: int = 128
    temperature: float = 0.1
    crop_scale: tuple[float, float] = (0.3, 1.0)


class SimCLR(Method):
    name = "simclr"

    def __init__(self, cfg: SimCLRConfig, gather_distributed: bool = False) -> None:
        super().__init__(gather_distributed)
        self.cfg = cfg
        self.net = unet(cfg.channels)
        self.projector = projection_mlp((cfg.channels[-1], cfg.proj_hidden, cfg.proj_dim))
        self.views = same_views(ViewConfig(crop_scale=cfg.crop_scale))

    def chance(self, batch_size: int, image_size: int) -> dict[str, float]:
        return {"loss": math.log(2 * batch_size - 1)}

    def loss(self, batch: Batch, g: torch.Generator, step: int) -> dict[str, torch.Tensor]:
        v = make_views(batch.images, *self.views, g)
        h1, h2 = self.h(v.x1), self.h(v.x2)  # (B, C)
        return {"loss": nt_xent(self.projector(h1), self.projector(h2), self.cfg.temperature,
                                 gather_distributed=self.gather_distributed)}

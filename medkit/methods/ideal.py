"""IDEAL pretraining (Basak et al., ICASSP 2023): dense contrastive learning with a 1x1-conv
projection head on query/key (momentum) encoders.

q = head_q(encoder_q(view 1)) and k = head_k(encoder_k(view 2)) are maps (B, D, h, w), the key
network a momentum copy of the query one (:class:`~medkit.methods.momentum.MomentumMethod`); k is
warped onto q's grid so that position i of both shows the same image location; dense InfoNCE
takes k_i as the positive of q_i and the other positions as negatives. The fine-tuning stage
(two decoders, cross-consistency) lives in :mod:`medkit.eval` with the other protocols.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from medkit.data.views import ViewConfig, make_views, warp_to_view
from medkit.losses.chunked import info_nce_fn
from medkit.data.batches import Batch
from medkit.methods.base import pooled, same_views, unet
from medkit.methods.momentum import MomentumMethod
from medkit.models.heads import projection_conv
from medkit.models.unet import DEFAULT_CHANNELS


@dataclass(frozen=True)
class IDEALConfig:
    """IDEAL.

    Paper (GPU): ResNet-50 encoder, 1x1-conv dense head, Adam 1e-5 (other settings not verified).
    CPU demo default: the kit's U-Net encoder, dense head on encoder level ``feature_level`` (enc3: 1/16 of the
    input, 8 x 8 at 128 px), head 128 -> 128, momentum 0.99, temperature 0.2.
    Transfer for fine-tuning: the dense loss reads an encoder map, so ``--transfer all`` and
    ``encoder`` both start from the pretrained encoder and an untrained decoder. Measured on ACDC at
    64 px with plain fine-tuning (10 pairs per k, ``papermill_runs/reference/acdc_chaitanya_ideal``):
    -0.007 [-0.043, +0.009] Dice over random at k = 1 and +0.005 [-0.005, +0.025] at k = 2, both
    inside the noise. The paper's two-decoder consistency fine-tuning (``--eval-protocol
    consistency``) from IDEAL against the same network from random initialisation, k = 1
    (``papermill_runs/reference/acdc_ideal_consistency``): +0.006 [-0.012, +0.025], inside the noise.
    """

    channels: tuple[int, ...] = DEFAULT_CHANNELS
    feature_level: int = 3  # the encoder map enc{feature_level} under the dense head
    proj_dim: int = 128
    momentum: float = 0.99
    temperature: float = 0.2
    crop_scale: tuple[float, float] = (0.3, 1.0)
    chunk: int = 0  # > 0: linear-memory dense loss (large maps, e.g. full resolution on a GPU)

    def __post_init__(self) -> None:
        if not 0 <= self.feature_level < len(self.channels):
            raise ValueError(f"feature_level must be an encoder level 0..{len(self.channels) - 1}, "
                             f"got {self.feature_level}")


class Dense(nn.Module):
    def __init__(self, cfg: IDEALConfig) -> None:
        super().__init__()
        self.net = unet(cfg.channels)
        self.level = cfg.feature_level
        c = cfg.channels[self.level]
        self.head = projection_conv((c, c, cfg.proj_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.net.encode(x)[self.level])  # (B, D, h, w)


class IDEAL(MomentumMethod):
    name = "ideal"

    def __init__(self, cfg: IDEALConfig, gather_distributed: bool = False) -> None:
        # the dense loss contrasts within each image: nothing to gather
        super().__init__(Dense(cfg), cfg.momentum, gather_distributed)
        self.cfg = cfg
        self.views = same_views(ViewConfig(crop_scale=cfg.crop_scale))

    def loss(self, batch: Batch, g: torch.Generator, step: int) -> dict[str, torch.Tensor]:
        v = make_views(batch.images, *self.views, g)
        q1, q2 = self.query(v.x1), self.query(v.x2)
        with torch.no_grad():
            k1, k2 = self.key(v.x1), self.key(v.x2)
            k2w, valid12 = warp_to_view(k2, v.theta1, v.theta2, margin=0.25)  # view 2's keys on view 1's grid
            k1w, valid21 = warp_to_view(k1, v.theta2, v.theta1, margin=0.25)
        dense = info_nce_fn("dense", self.cfg.chunk)
        loss = 0.5 * (dense(q1, k2w, valid12, temperature=self.cfg.temperature)
                      + dense(q2, k1w, valid21, temperature=self.cfg.temperature))
        return {"loss": loss, "dense": loss}

    def chance(self, batch_size: int, image_size: int) -> dict[str, float]:
        side = image_size // 2 ** (self.cfg.feature_level + 1)  # positions of the dense map per image
        return {"dense": math.log(side * side)}

    @torch.no_grad()
    def embed(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """h (pooled bottleneck) and the dense projections z_pixels (B, D, h, w)."""
        enc = self.net.encode(x)
        return {"h": pooled(enc[-1]), "z_pixels": self.query.head(enc[self.query.level])}

"""Pix2Rep (Seince et al. 2024): pixel-level SSL of a whole U-Net, equivariant to spatial
transforms and invariant to intensity transforms.

The full-resolution U-Net output f (B, C, H, W) of each view goes through a 1x1-conv projector;
view 2's map is warped onto view 1's grid, so that each pixel's positive is the same point of
the anatomy; out-of-view pixels are masked (the authors' code does not). Loss: NT-Xent over M
sampled pixel pairs (``loss="infonce"``) or Barlow Twins over them (Pix2Rep-v2, ``"barlow"``).

Only the M pairs enter the loss, so the projector runs on them alone: on the M view-1 pixels and
the 4 view-2 pixels around each corresponding point, whose projections are then combined with
the bilinear weights (project, then warp, as the paper; :func:`~medkit.data.views.pixel_pairs`).
A 1x1-conv projector is pointwise, so this equals projecting the whole maps, except that its
BatchNorm statistics come from the sampled pixels of both views; it saves the projector and the
warp over all B*H*W pixels, which on a CPU cost more than the U-Net itself.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from medkit.data.views import ViewConfig, make_views, pixel_pairs
from medkit.losses.barlow import barlow_twins
from medkit.losses.chunked import info_nce_fn
from medkit.data.batches import Batch
from medkit.methods.base import Method, pooled, same_views, unet
from medkit.models.heads import projection_conv
from medkit.models.unet import DEFAULT_CHANNELS


@dataclass(frozen=True)
class Pix2RepConfig:
    """Pix2Rep.

    Paper (GPU): U-Net with a 1024-channel full-resolution output (``out_width=1024``), projector
    1024-256-256, Adam 4.7e-4, 200 epochs, batch 8 of 128 x 128, M = 1000 pixel pairs, temperature
    0.53; rotation within +-90 degrees, crop scale 0.33-0.95, flips.
    CPU demo default: the kit's U-Net with a 64-channel full-resolution output map (a 3x3 conv block
    after the last upsampling, ``out_width=64``; ``out_width=0`` gives the plain 16-channel bilinear
    output of the other methods), projector 64-64-64, M = 1000.
    Recommended transfer for fine-tuning: the encoder (``--transfer encoder``). Measured on ACDC at
    64 px (10 pairs per k, ``papermill_runs/reference/acdc_pix2rep``): from the encoder, +0.036
    [+0.012, +0.058] Dice over random at k = 1 and +0.026 [+0.019, +0.041] at k = 2; the whole U-Net
    (its decoder barely uses the bottleneck) fine-tuned 0.054 below random at k = 1 (docs/results.md, the
    earlier 5-combination table). That reference was measured with ``out_width=0`` (16-channel output).
    With ``out_width=64`` (``papermill_runs/reference/acdc_pix2rep_wide``, k = 1, the same 10 pairs,
    random initialisation of the same architecture): fine-tuning from the encoder -0.001 [-0.021,
    +0.017], inside the noise, and the linear probe +0.080 [+0.056, +0.102] against the 16-channel
    +0.164: at 800 CPU steps the wide map does not pay; the paper's 1024 channels train far longer.
    """

    channels: tuple[int, ...] = DEFAULT_CHANNELS
    out_width: int = 64
    proj_dims: tuple[int, ...] = (64, 64)
    loss: str = "infonce"  # "infonce" or "barlow"
    pixels: int = 1000
    temperature: float = 0.53
    barlow_lambda: float = 5e-3
    chunk: int = 0  # > 0: linear-memory loss, chunk anchors at a time (large ``pixels``)
    rotate: float = 90.0
    crop_scale: tuple[float, float] = (0.33, 0.95)

    def __post_init__(self) -> None:
        if self.loss not in ("infonce", "barlow"):
            raise ValueError(f"loss must be 'infonce' or 'barlow', got {self.loss!r}")


class Pix2Rep(Method):
    name = "pix2rep"

    def __init__(self, cfg: Pix2RepConfig, gather_distributed: bool = False) -> None:
        super().__init__(gather_distributed)
        self.cfg = cfg
        self.net = unet(cfg.channels, cfg.out_width)
        self.projector = projection_conv((self.net.feature_channels, *cfg.proj_dims))
        self.views = same_views(ViewConfig(crop_scale=cfg.crop_scale, rotate=cfg.rotate))

    def chance(self, batch_size: int, image_size: int) -> dict[str, float]:
        return {"pixel_infonce": math.log(2 * self.cfg.pixels - 1)} if self.cfg.loss == "infonce" else {}

    def loss(self, batch: Batch, g: torch.Generator, step: int) -> dict[str, torch.Tensor]:
        v = make_views(batch.images, *self.views, g)
        f1 = self.net.features(v.x1)["out"]  # (B, C, H, W)
        f2 = self.net.features(v.x2)["out"]
        idx1, idx2, w2 = pixel_pairs(v.theta1, v.theta2, f1.shape[-2:], self.cfg.pixels, g)  # (M,), (M, 4), (M, 4)
        c, m = f1.shape[1], len(idx1)
        p1 = f1.permute(0, 2, 3, 1).reshape(-1, c)[idx1]  # (M, C)
        p2 = f2.permute(0, 2, 3, 1).reshape(-1, c)[idx2.flatten()]  # (4M, C)
        z = self.projector(torch.cat([p1, p2])[:, :, None, None])[:, :, 0, 0]  # pointwise: (5M, D)
        z1 = z[:m]
        z2 = (w2[:, :, None] * z[m:].view(m, 4, -1)).sum(1)  # bilinear: view 2 at view 1's pixels
        if self.cfg.loss == "infonce":
            nt_xent = info_nce_fn("nt_xent", self.cfg.chunk, self.gather_distributed)
            loss = nt_xent(z1, z2, self.cfg.temperature)
            return {"loss": loss, "pixel_infonce": loss}
        return barlow_twins(z1, z2, self.cfg.barlow_lambda)

    @torch.no_grad()
    def embed(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        f = self.net.features(x)
        out = f["out"]  # (B, C, H, W)
        h = pooled(f[f"enc{len(self.net.encoder) - 1}"])  # (B, C) of the bottleneck
        return {"h": h, "pixels": out, "z_pixels": self.projector(out)}

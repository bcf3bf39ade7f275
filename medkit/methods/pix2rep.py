"""Pix2Rep (Seince et al. 2024): pixel-level SSL of a whole U-Net, equivariant to spatial
transforms and invariant to intensity transforms.

The full-resolution U-Net output f (B, C, H, W) of each view goes through a 1x1-conv projector;
view 2's map is warped onto view 1's grid, so that each pixel's positive is the same point of
the anatomy; out-of-view pixels are masked (the authors' code does not). Loss: NT-Xent over M
sampled pixel pairs (``loss="infonce"``) or Barlow Twins over them (Pix2Rep-v2, ``"barlow"``).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from medkit.data.views import ViewConfig, make_views, warp_to_view
from medkit.losses.barlow import barlow_twins
from medkit.losses.dense import pixel_info_nce, sample_valid_pixels
from medkit.methods.base import Batch, Method, unet
from medkit.models.heads import projection_conv


@dataclass(frozen=True)
class Pix2RepConfig:
    """Pix2Rep.

    Paper (GPU): U-Net with a 1024-channel full-resolution output, projector 1024-256-256,
    Adam 4.7e-4, 200 epochs, batch 8 of 128 x 128, M = 1000 pixel pairs, temperature 0.53;
    rotation within +-90 degrees, crop scale 0.33-0.95, flips.
    CPU demo default: the kit's U-Net (16-channel output), projector 16-64-64, M = 1000.
    """

    channels: tuple[int, ...] = (16, 32, 64, 128, 256)
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

    def __init__(self, cfg: Pix2RepConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.net = unet(cfg.channels)
        self.projector = projection_conv((cfg.channels[0], *cfg.proj_dims))
        v = ViewConfig(crop_scale=cfg.crop_scale, rotate=cfg.rotate)
        self.views = (v, v)

    def loss(self, batch: Batch, g: torch.Generator, step: int) -> dict[str, torch.Tensor]:
        v = make_views(batch.images, *self.views, g)
        f1 = self.projector(self.net.features(v.x1)["out"])  # (B, D, H, W)
        f2 = self.projector(self.net.features(v.x2)["out"])
        f2w, valid = warp_to_view(f2, v.theta1, v.theta2)  # view 2 on view 1's grid, (B, H, W)
        if self.cfg.loss == "infonce":
            loss = pixel_info_nce(f1, f2w, valid, g, self.cfg.pixels, self.cfg.temperature, self.cfg.chunk)
            return {"loss": loss, "pixel_infonce": loss}
        idx = sample_valid_pixels(valid, self.cfg.pixels, g)
        d = f1.shape[1]
        z1 = f1.permute(0, 2, 3, 1).reshape(-1, d)[idx]  # (M, D)
        z2 = f2w.permute(0, 2, 3, 1).reshape(-1, d)[idx]
        terms = barlow_twins(z1, z2, self.cfg.barlow_lambda)
        return terms

    @torch.no_grad()
    def embed(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        f = self.net.features(x)
        out = f["out"]  # (B, C, H, W)
        h = f[f"enc{len(self.net.encoder) - 1}"].mean((2, 3))
        return {"h": h, "pixels": out, "z_pixels": self.projector(out)}

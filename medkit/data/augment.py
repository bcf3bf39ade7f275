"""Augmentation on batched tensors, with the geometry kept.

Spatial: one random affine per sample (rotation, isotropic scale, translation, flips), applied
with :func:`torch.nn.functional.grid_sample` to a whole batch at once; the (B, 2, 3) matrices
are returned, so that a pixel of one view can be found in another (the pretraining methods
need that). Intensity: gamma, brightness/contrast and Gaussian noise, per sample.

All random numbers come from one CPU :class:`torch.Generator`, so that a training run is
reproducible and resumable on any device.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class AugmentConfig:
    """Strength of the augmentation (defaults: a supervised segmentation recipe).

    Attributes:
        rotate: maximal rotation in degrees (uniform in [-rotate, rotate]).
        scale: (min, max) isotropic zoom.
        translate: maximal shift as a fraction of the image side.
        flip: random horizontal and vertical flips.
        gamma: (min, max) gamma on [0, 1] intensities.
        contrast: (min, max) multiplicative contrast around the mean.
        brightness: maximal additive shift.
        noise: maximal std of additive Gaussian noise.
    """

    rotate: float = 180.0
    scale: tuple[float, float] = (0.8, 1.2)
    translate: float = 0.1
    flip: bool = True
    gamma: tuple[float, float] = (0.7, 1.5)
    contrast: tuple[float, float] = (0.75, 1.25)
    brightness: float = 0.1
    noise: float = 0.03


def _uniform(n: int, lo: float, hi: float, g: torch.Generator) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=g)


def random_affine(n: int, cfg: AugmentConfig, g: torch.Generator) -> torch.Tensor:
    """Random affine matrices (n, 2, 3) in the normalised coordinates of ``affine_grid``.

    The matrix maps output coordinates to input coordinates (``grid_sample`` convention).
    """
    ang = _uniform(n, -cfg.rotate, cfg.rotate, g) * math.pi / 180
    zoom = _uniform(n, *cfg.scale, g)
    shift = _uniform(2 * n, -cfg.translate, cfg.translate, g).view(n, 2) * 2
    fx = torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0) if cfg.flip else torch.ones(n)
    fy = torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0) if cfg.flip else torch.ones(n)
    cos, sin = torch.cos(ang) / zoom, torch.sin(ang) / zoom
    theta = torch.stack([torch.stack([cos * fx, -sin * fy, shift[:, 0]], 1),
                         torch.stack([sin * fx, cos * fy, shift[:, 1]], 1)], 1)  # (n, 2, 3)
    return theta


def warp(x: torch.Tensor, theta: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
    """Apply affine matrices (B, 2, 3) to a batch (B, C, H, W); zeros outside the field of view."""
    grid = F.affine_grid(theta.to(x), list(x.shape), align_corners=False)  # (B, H, W, 2)
    return F.grid_sample(x, grid, mode=mode, padding_mode="zeros", align_corners=False)


def intensity(x: torch.Tensor, cfg: AugmentConfig, g: torch.Generator) -> torch.Tensor:
    """Random gamma, contrast, brightness and noise per sample of a (B, C, H, W) batch in [0, 1]."""
    b = x.shape[0]
    shape = (b, 1, 1, 1)
    gamma = _uniform(b, *cfg.gamma, g).view(shape).to(x)
    x = x.clamp(0, 1) ** gamma
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * _uniform(b, *cfg.contrast, g).view(shape).to(x) + mean
    x = x + _uniform(b, -cfg.brightness, cfg.brightness, g).view(shape).to(x)
    sigma = _uniform(b, 0, cfg.noise, g).view(shape).to(x)
    return x + sigma * torch.randn(x.shape, generator=g).to(x)


def augment_segmentation(img: torch.Tensor, lab: torch.Tensor, cfg: AugmentConfig,
                         g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Augment images (B, 1, H, W) and labels (B, H, W) with one shared affine per sample."""
    theta = random_affine(img.shape[0], cfg, g)
    img = warp(img, theta, "bilinear")
    lab = warp(lab[:, None].float(), theta, "nearest")[:, 0].long()  # (B, H, W)
    return intensity(img, cfg, g), lab

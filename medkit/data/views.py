"""Two augmented views per slice, with the geometry that links them.

Each view is the source slice resampled through an affine map ``theta`` (B, 2, 3) that takes
normalised view coordinates (x, y in [-1, 1], ``affine_grid`` convention) to source coordinates,
then intensity-augmented. Because both maps are kept, a point of view 1 can be found in view 2:

    p_src = theta1 [p1; 1],      p2 = theta2_lin^-1 (p_src - theta2_t).

This is what the dense and local methods need: Pix2Rep's equivariance (features of one view
warped onto the other), Med-MoCo's local regions at the same image location in both views, and
IDEAL's aligned positions. Points that fall outside either view (or outside the source image)
are flagged invalid, so that losses can mask them (the Pix2Rep authors do not).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from medkit.data.augment import AugmentConfig, _uniform, intensity


@dataclass(frozen=True)
class ViewConfig:
    """Spatial and intensity augmentation of one view.

    Attributes:
        crop_scale: (min, max) area fraction of the source covered by the view (RandomResizedCrop).
        crop_ratio: (min, max) aspect ratio of the crop.
        rotate: maximal rotation in degrees.
        flip: random horizontal and vertical flips.
        intensity: photometric augmentation (gamma, contrast, brightness, noise).
    """

    crop_scale: tuple[float, float] = (0.2, 1.0)
    crop_ratio: tuple[float, float] = (0.75, 1.333)
    rotate: float = 0.0
    flip: bool = True
    intensity: AugmentConfig = AugmentConfig(gamma=(0.7, 1.4), contrast=(0.7, 1.3), brightness=0.3,
                                             noise=0.03)


INTENSITY_ONLY = ViewConfig(crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), rotate=0.0, flip=False)


def view_affine(n: int, cfg: ViewConfig, g: torch.Generator) -> torch.Tensor:
    """Random view -> source affine maps (n, 2, 3): crop (scale, aspect, position), rotation, flips."""
    area = _uniform(n, *cfg.crop_scale, g)
    log_r = _uniform(n, math.log(cfg.crop_ratio[0]), math.log(cfg.crop_ratio[1]), g)
    ratio = torch.exp(log_r)
    sx = torch.sqrt(area * ratio).clamp(max=1.0)  # half-widths in normalised units
    sy = torch.sqrt(area / ratio).clamp(max=1.0)
    cx = _uniform(n, -1, 1, g) * (1 - sx)  # crop centre, kept inside the source
    cy = _uniform(n, -1, 1, g) * (1 - sy)
    ang = _uniform(n, -cfg.rotate, cfg.rotate, g) * math.pi / 180
    fx = torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0) if cfg.flip else torch.ones(n)
    fy = torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0) if cfg.flip else torch.ones(n)
    cos, sin = torch.cos(ang), torch.sin(ang)
    # source = centre + diag(sx, sy) R diag(fx, fy) view
    lin = torch.stack([torch.stack([sx * cos * fx, -sx * sin * fy], 1),
                       torch.stack([sy * sin * fx, sy * cos * fy], 1)], 1)  # (n, 2, 2)
    return torch.cat([lin, torch.stack([cx, cy], 1)[:, :, None]], dim=2)  # (n, 2, 3)


@dataclass(frozen=True)
class Views:
    """Two views of a batch: images (B, 1, H, W) and their view -> source maps (B, 2, 3)."""

    x1: torch.Tensor
    x2: torch.Tensor
    theta1: torch.Tensor
    theta2: torch.Tensor


def make_views(x: torch.Tensor, cfg1: ViewConfig, cfg2: ViewConfig, g: torch.Generator) -> Views:
    """Two augmented views of a batch of slices (B, 1, H, W), with their geometry."""
    b = x.shape[0]
    t1, t2 = view_affine(b, cfg1, g), view_affine(b, cfg2, g)
    x1 = intensity(resample(x, t1), cfg1.intensity, g)
    x2 = intensity(resample(x, t2), cfg2.intensity, g)
    return Views(x1, x2, t1.to(x.device), t2.to(x.device))


def resample(x: torch.Tensor, theta: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
    """Sample (B, C, H, W) through view -> source maps (B, 2, 3); zeros outside the source."""
    grid = F.affine_grid(theta.to(x), list(x.shape), align_corners=False)  # (B, H, W, 2)
    return F.grid_sample(x, grid, mode=mode, padding_mode="zeros", align_corners=False)


def to_source(p: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Normalised points (B, P, 2) of a view -> the same points in source coordinates."""
    return p @ theta[:, :, :2].transpose(1, 2) + theta[:, None, :, 2]


def map_points(p: torch.Tensor, theta_from: torch.Tensor, theta_to: torch.Tensor) -> torch.Tensor:
    """Map normalised points (B, P, 2) of one view to the other view's coordinates (B, P, 2)."""
    src = to_source(p, theta_from)  # (B, P, 2)
    inv = torch.linalg.inv(theta_to[:, :, :2])  # (B, 2, 2)
    return (src - theta_to[:, None, :, 2]) @ inv.transpose(1, 2)


def inside(p: torch.Tensor, margin: float = 0.0) -> torch.Tensor:
    """(B, P) mask of normalised points within [-1 + margin, 1 - margin]^2."""
    return (p.abs() <= 1 - margin).all(-1)


def sample_points(fmap: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """Bilinear features (B, P, C) of a map (B, C, h, w) at normalised points (B, P, 2)."""
    out = F.grid_sample(fmap, p[:, :, None, :].to(fmap), mode="bilinear", padding_mode="zeros",
                        align_corners=False)  # (B, C, P, 1)
    return out[..., 0].transpose(1, 2)


def pixel_grid(b: int, h: int, w: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Normalised centres of an h x w grid of pixels, (B, h*w, 2), (x, y) order, row-major."""
    ys = (torch.arange(h, device=device) + 0.5) / h * 2 - 1
    xs = (torch.arange(w, device=device) + 0.5) / w * 2 - 1
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([xx, yy], -1).view(1, h * w, 2).expand(b, h * w, 2)


def warp_to_view(fmap2: torch.Tensor, theta1: torch.Tensor, theta2: torch.Tensor,
                 size: tuple[int, int] | None = None, margin: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Resample view 2's feature map onto view 1's pixel grid.

    Args:
        fmap2: (B, C, h, w) features of view 2.
        theta1, theta2: view -> source maps of the two views.
        size: (h1, w1) of view 1's grid (default: that of fmap2).
        margin: pixels kept away from view 2's border (and twice that from the source's): 1 makes
            the warp exact for images; coarse feature maps want less (0.25).

    Returns:
        warped (B, C, h1, w1) and valid (B, h1, w1): True where the view-1 pixel is also seen by
        view 2 (and lies in the source image).
    """
    b, c, h, w = fmap2.shape
    h1, w1 = size or (h, w)
    p1 = pixel_grid(b, h1, w1, fmap2.device)  # (B, P, 2)
    p2 = map_points(p1, theta1, theta2)
    src = to_source(p1, theta1)
    # margins (one pixel of view 2, two of the source): bilinear sampling near a border mixes
    # in zero padding, and view 2 is itself resampled from the source
    valid = inside(p2, 2.0 * margin / min(h, w)) & inside(src, 4.0 * margin / min(h1, w1))  # (B, P)
    warped = sample_points(fmap2, p2).transpose(1, 2).reshape(b, c, h1, w1)
    return warped, valid.view(b, h1, w1)


def pixel_pairs(theta1: torch.Tensor, theta2: torch.Tensor, size: tuple[int, int], m: int,
                g: torch.Generator, margin: float = 1.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """M corresponding pixels of two views as indices, for sampling features without warping maps.

    Draws up to ``m`` view-1 pixels among those seen by both views (the validity of
    :func:`warp_to_view`) and gives, for each, the 4 view-2 pixels around its corresponding point
    with their bilinear weights, so that ``sum_k w[:, k] * f2_flat[idx2[:, k]]`` equals
    ``warp_to_view(f2)`` at that pixel (``F.grid_sample``, ``align_corners=False``). Cost: O(M)
    instead of resampling the whole (B, C, H, W) map and its gradient.

    Args:
        theta1, theta2: (B, 2, 3) view -> source maps; size: (h, w) of both views' maps.
        m: pixels drawn; g: generator.

    Returns:
        idx1 (M,) flat indices into (B*h*w) of view 1, idx2 (M, 4) of view 2, weights (M, 4).
    """
    b, (h, w) = theta1.shape[0], size
    p1 = pixel_grid(b, h, w, theta1.device)  # (B, P, 2)
    p2 = map_points(p1, theta1, theta2)
    valid = inside(p2, 2.0 * margin / min(h, w)) & inside(to_source(p1, theta1), 4.0 * margin / min(h, w))
    flat = torch.nonzero(valid.reshape(-1).cpu()).flatten()
    if len(flat) == 0:
        raise ValueError("no pixel is seen by both views: the views do not overlap")
    idx1 = flat[torch.randperm(len(flat), generator=g)[:m]].to(theta1.device)  # (M,)
    q = p2.reshape(-1, 2)[idx1]  # (M, 2) normalised (x, y) in view 2
    px, py = ((q[:, 0] + 1) * w - 1) / 2, ((q[:, 1] + 1) * h - 1) / 2  # pixel coordinates
    x0, y0 = px.floor().long().clamp(0, w - 2), py.floor().long().clamp(0, h - 2)
    fx, fy = px - x0, py - y0  # (M,)
    base = torch.div(idx1, h * w, rounding_mode="floor") * h * w + y0 * w + x0
    idx2 = torch.stack([base, base + 1, base + w, base + w + 1], 1)  # (M, 4)
    weights = torch.stack([(1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy], 1)
    return idx1, idx2, weights

"""Regions seen by both views of a pair, and features pooled over them at the same image location.

Med-MoCo's local loss (Hassanpour et al. 2024) contrasts regions of an early feature map; for its
positives to show the same anatomy, a region is sampled in view 1 where view 2 sees it too, and
pooled in view 2 at the image location that view 1's region shows (through the views' affine
maps, :mod:`medkit.data.views`).
"""
from __future__ import annotations

import torch

from medkit.data.views import inside, map_points, sample_points, to_source


def aligned_regions(n: int, n_regions: int, theta1: torch.Tensor, theta2: torch.Tensor,
                    g: torch.Generator, size: float = 0.2) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sample region centres in view 1 whose whole region is seen by view 2 and lies in the source.

    Args:
        n: batch size; n_regions: regions per image; theta1, theta2: (B, 2, 3) view -> source maps.
        size: region side as a fraction of the view's side (normalised units: 2 * size).

    Returns:
        centres in view 1 (B, R, 2), the same points in view 2 (B, R, 2), valid (B, R).
    """
    cand = (torch.rand(n, 4 * n_regions, 2, generator=g) * 2 - 1) * (0.95 - size)  # (B, 4R, 2)
    cand = cand.to(theta1.device)
    half = size
    ok = torch.ones(n, 4 * n_regions, dtype=torch.bool, device=theta1.device)
    for dx in (-half, half):  # all four corners of the region must be inside view 2
        for dy in (-half, half):
            corner = cand + torch.tensor([dx, dy], device=cand.device)
            ok &= inside(map_points(corner, theta1, theta2), 0.05) & inside(to_source(corner, theta1), 0.05)
    # take valid candidates first (stable order keeps it random and seeded)
    order = torch.argsort((~ok).float(), dim=1, stable=True)[:, :n_regions]  # (B, R)
    c1 = torch.gather(cand, 1, order[..., None].expand(-1, -1, 2))
    valid = torch.gather(ok, 1, order)
    return c1, map_points(c1, theta1, theta2), valid


def pool_at(fmap: torch.Tensor, centres: torch.Tensor, theta_from: torch.Tensor | None,
            theta_to: torch.Tensor | None, size: float = 0.2, k: int = 3) -> torch.Tensor:
    """Mean features (B, R, C) over a k x k lattice of points of square regions around ``centres``
    (given in the coordinates of view 'from'; with thetas, sampled in view 'to')."""
    b, r, _ = centres.shape
    offs = torch.linspace(-size, size, k, device=centres.device)
    grid = torch.cartesian_prod(offs, offs)  # (k*k, 2)
    pts = (centres[:, :, None, :] + grid).reshape(b, r * k * k, 2)  # in view 'from'
    if theta_from is not None and theta_to is not None:
        pts = map_points(pts, theta_from, theta_to)
    feats = sample_points(fmap, pts)  # (B, R*k*k, C)
    return feats.view(b, r, k * k, -1).mean(2)

"""Local (region-level) contrastive losses.

Chaitanya et al. (NeurIPS 2020), local loss L^l on a decoder map: both views come from intensity
augmentation only, so a region is at the same place in both. R fixed regions of r x r pixels are
mean-pooled into embeddings; region i of view 1 has as positive region i of view 2 and as
negatives the ``n_neg`` nearest other regions of both views; L^D (``partition`` given) also
counts region i of same-partition slices of other volumes as positives. With s = cos / t:

    L = mean_(b, i, view) -1/|P| sum_{p in P} log( exp(s_p) / sum_{a in P u N} exp(s_a) ).

Hassanpour et al. (2024, "Med-MoCo") local loss on an early, trainable encoder map: regions are
sampled where both views overlap and pooled at the *same image location* in each view (through
the views' affine maps), positive = same region in the other view, negatives = the other
regions of the same image. The authors' code pooled the raw input (no gradient) at unaligned
positions; medkit pools a trainable map at aligned positions (tests/test_local.py shows the
loss moves the early layer's weights).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from medkit.data.views import inside, map_points, sample_points, to_source
from medkit.losses._masked import masked_contrastive


def region_grid(h: int, w: int, n_regions: int = 13, size: int = 3) -> torch.Tensor:
    """Top-left corners (n_regions, 2) as (row, col) of r x r regions: the n_regions cells of a
    ceil(sqrt(n)) x ceil(sqrt(n)) grid closest to the centre of an h x w map."""
    k = math.ceil(math.sqrt(n_regions))
    if h < size + k - 1 or w < size + k - 1:  # regions may overlap on small maps, never coincide
        raise ValueError(f"a {h}x{w} map is too small for {n_regions} regions of {size}x{size}")
    ys = torch.linspace(0, h - size, k).round().long()
    xs = torch.linspace(0, w - size, k).round().long()
    cells = torch.cartesian_prod(ys, xs)  # (k*k, 2)
    centre = torch.tensor([(h - size) / 2, (w - size) / 2])
    order = torch.argsort(((cells.float() - centre) ** 2).sum(1), stable=True)
    return cells[order[:n_regions]]


def pool_regions(fmap: torch.Tensor, corners: torch.Tensor, size: int) -> torch.Tensor:
    """Mean features of r x r regions: (B, C, H, W) -> (B, R, C)."""
    pooled = F.avg_pool2d(fmap, size, stride=1)  # (B, C, H-r+1, W-r+1): every r x r window
    return pooled[:, :, corners[:, 0], corners[:, 1]].transpose(1, 2)


def chaitanya_local(f1: torch.Tensor, f2: torch.Tensor, n_regions: int = 13, size: int = 3,
                    n_neg: int = 5, temperature: float = 0.1, partition: torch.Tensor | None = None,
                    volume: torch.Tensor | None = None) -> torch.Tensor:
    """Chaitanya et al.'s local loss L^l (or L^D when ``partition`` and ``volume`` are given).

    Args:
        f1, f2: (B, C, H, W) decoder maps of two intensity-augmented views (aligned).
        n_regions, size: R regions of size x size on a centred grid (paper: 13 of 3 x 3).
        n_neg: negatives per region and view: its nearest other regions (paper: 5).
        temperature: t (paper: 0.1).
        partition, volume: (B,) for L^D: region i of same-partition slices of other volumes are
            positives too.
    """
    if f1.ndim != 4 or f1.shape != f2.shape:
        raise ValueError(f"chaitanya_local: expected two (B, C, H, W) maps of the same shape, got "
                         f"{tuple(f1.shape)} and {tuple(f2.shape)}")
    b, _, h, w = f1.shape
    corners = region_grid(h, w, n_regions, size).to(f1.device)  # (R, 2)
    r = len(corners)
    e = torch.cat([pool_regions(f1, corners, size), pool_regions(f2, corners, size)], dim=1)  # (B, 2R, C)
    e = F.normalize(e.reshape(b * 2 * r, -1), dim=1)  # (M, C), M = B * 2R; index = (b, view, i)
    sim = e @ e.T / temperature  # (M, M)
    img = torch.arange(b, device=e.device).repeat_interleave(2 * r)  # (M,)
    view = torch.arange(2, device=e.device).repeat_interleave(r).repeat(b)
    reg = torch.arange(r, device=e.device).repeat(2 * b)
    dist = torch.cdist(corners.float(), corners.float())  # (R, R)
    near = torch.zeros(r, r, dtype=torch.bool, device=e.device)
    nn_idx = torch.argsort(dist, dim=1, stable=True)[:, 1:n_neg + 1]  # nearest others, not itself
    near.scatter_(1, nn_idx, True)
    same_img = img[:, None] == img[None, :]
    positives = same_img & (reg[:, None] == reg[None, :]) & (view[:, None] != view[None, :])
    negatives = same_img & near[reg][:, reg]
    if partition is not None and volume is not None:
        p, v = partition.to(e.device)[img], volume.to(e.device)[img]
        cross = (p[:, None] == p[None, :]) & (v[:, None] != v[None, :]) & (reg[:, None] == reg[None, :])
        positives = positives | cross
    return masked_contrastive(sim, positives, positives | negatives)


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


def medmoco_local(f1: torch.Tensor, f2: torch.Tensor, theta1: torch.Tensor, theta2: torch.Tensor,
                  g: torch.Generator, n_regions: int = 20, size: float = 0.2,
                  temperature: float = 0.2) -> torch.Tensor:
    """Med-MoCo's local loss on aligned regions of an early encoder map.

    Args:
        f1, f2: (B, C, h, w) early feature maps of view 1 and view 2 (trainable layers).
        theta1, theta2: (B, 2, 3) view -> source maps of the two views.
        g: generator for the region positions.
        n_regions: regions per image (paper: 20).
        size: half-side of a region in normalised view-1 units (0.2: a fifth of the view).
        temperature: t.

    Returns:
        the mean over valid regions and both directions of the InfoNCE with positive = the same
        region in the other view and negatives = the other regions of that image (both views).
    """
    if f1.ndim != 4 or f2.ndim != 4 or f1.shape[:2] != f2.shape[:2]:
        raise ValueError(f"medmoco_local: expected (B, C, h, w) maps with equal B and C, got "
                         f"{tuple(f1.shape)} and {tuple(f2.shape)}")
    b = f1.shape[0]
    c1, _, valid = aligned_regions(b, n_regions, theta1, theta2, g, size)
    e1 = pool_at(f1, c1, None, None, size)  # (B, R, C) at view-1 positions
    e2 = pool_at(f2, c1, theta1, theta2, size)  # (B, R, C): the same image locations, in view 2
    r = c1.shape[1]
    e = F.normalize(torch.cat([e1, e2], 1).reshape(b * 2 * r, -1), dim=1)  # (M, C), (b, view, i)
    sim = e @ e.T / temperature
    img = torch.arange(b, device=e.device).repeat_interleave(2 * r)
    view = torch.arange(2, device=e.device).repeat_interleave(r).repeat(b)
    reg = torch.arange(r, device=e.device).repeat(2 * b)
    ok = valid.repeat(1, 2).reshape(-1)  # (M,)
    same_img = (img[:, None] == img[None, :]) & ok[None, :]
    eye = torch.eye(len(e), dtype=torch.bool, device=e.device)
    positives = same_img & (reg[:, None] == reg[None, :]) & (view[:, None] != view[None, :])
    allowed = same_img & ~eye
    return masked_contrastive(sim, positives, allowed, weight=ok.float())

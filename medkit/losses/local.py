"""Local (region-level) contrastive losses.

Chaitanya et al. (NeurIPS 2020), local loss L^l on a decoder map: both views come from intensity
augmentation only, so a region is at the same place in both. R fixed regions of r x r pixels are
mean-pooled into embeddings; region i of view 1 has as positive region i of view 2 and as
negatives the ``n_neg`` nearest other regions of both views; L^D (``partition`` given) also
counts region i of same-partition slices of other volumes as positives. With s = cos / t:

    L = mean_(b, i, view) -1/|P| sum_{p in P} log( exp(s_p) / sum_{a in P u N} exp(s_a) ).

Hassanpour et al. (2024, "Med-MoCo") local loss on an early, trainable encoder map: regions are
sampled where both views overlap and pooled at the *same image location* in each view (through
the views' affine maps, by the caller: :mod:`medkit.data.regions`), positive = same region in the
other view, negatives = the other regions of the same image. The authors' code pooled the raw
input (no gradient) at unaligned positions; medkit pools a trainable map at aligned positions
(``tests/methods/test_moco_local.py`` shows the loss moves the early layer's weights).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from medkit.losses._masked import masked_contrastive


def region_grid(h: int, w: int, n_regions: int = 13, size: int = 3, spacing: int = 0) -> torch.Tensor:
    """Top-left corners (n_regions, 2) as (row, col) of r x r regions: the n_regions cells of a
    k x k grid (k = ceil(sqrt(n))) closest to the centre of an h x w map.

    ``spacing=0`` spreads the grid over the whole map (Chaitanya et al.'s layout); a positive one
    puts neighbouring cells that many pixels apart around the centre (``spacing = size``: regions
    that touch, so that a region's nearest negatives show the tissue just beside it)."""
    k = math.ceil(math.sqrt(n_regions))
    if spacing == 0:
        if h < size + k - 1 or w < size + k - 1:  # regions may overlap on small maps, never coincide
            raise ValueError(f"a {h}x{w} map is too small for {n_regions} regions of {size}x{size}")
        ys = torch.linspace(0, h - size, k).round().long()
        xs = torch.linspace(0, w - size, k).round().long()
    else:
        extent = spacing * (k - 1) + size  # the grid's side in pixels
        if spacing < 0 or h < extent or w < extent:
            raise ValueError(f"a {h}x{w} map is too small for a {k}x{k} grid of {size}x{size} regions "
                             f"{spacing} pixels apart (needs {extent}x{extent})")
        ys = (h - extent) // 2 + spacing * torch.arange(k)
        xs = (w - extent) // 2 + spacing * torch.arange(k)
    cells = torch.cartesian_prod(ys, xs)  # (k*k, 2)
    centre = torch.tensor([(h - size) / 2, (w - size) / 2])
    order = torch.argsort(((cells.float() - centre) ** 2).sum(1), stable=True)
    return cells[order[:n_regions]]


@dataclass(frozen=True)
class RegionGrid:
    """Where Chaitanya et al.'s local loss pools: ``n_regions`` regions of ``px`` x ``px`` pixels on
    a centred grid of a feature map (paper: 13 of 3 x 3, spread over the map).

    Args:
        n_regions: R, regions per map.
        px: side of a region, in pixels of the map.
        spacing: pixels between neighbouring regions (0: spread over the map; :func:`region_grid`).

    Example:
        >>> RegionGrid(4, px=2).corners(8, 8).tolist()
        [[0, 0], [0, 6], [6, 0], [6, 6]]
    """

    n_regions: int = 13
    px: int = 3
    spacing: int = 0

    def corners(self, h: int, w: int) -> torch.Tensor:
        """Top-left corners (R, 2) as (row, col) on an h x w map (:func:`region_grid`)."""
        return region_grid(h, w, self.n_regions, self.px, self.spacing)


def pool_regions(fmap: torch.Tensor, corners: torch.Tensor, size: int) -> torch.Tensor:
    """Mean features of r x r regions: (B, C, H, W) -> (B, R, C)."""
    pooled = F.avg_pool2d(fmap, size, stride=1)  # (B, C, H-r+1, W-r+1): every r x r window
    return pooled[:, :, corners[:, 0], corners[:, 1]].transpose(1, 2)


def chaitanya_local(f1: torch.Tensor, f2: torch.Tensor, grid: RegionGrid = RegionGrid(), n_neg: int = 5,
                    temperature: float = 0.1, partition: torch.Tensor | None = None,
                    volume: torch.Tensor | None = None) -> torch.Tensor:
    """Chaitanya et al.'s local loss L^l (or L^D when ``partition`` and ``volume`` are given).

    Args:
        f1, f2: (B, C, H, W) decoder maps of two intensity-augmented views (aligned).
        grid: the R regions pooled on each map (paper: 13 of 3 x 3, spread over the map).
        n_neg: negatives per region and view: its nearest other regions (paper: 5).
        temperature: t (paper: 0.1).
        partition, volume: (B,) for L^D: region i of same-partition slices of other volumes are
            positives too.

    Example:
        >>> f, grid = torch.randn(2, 4, 12, 12), RegionGrid(9, px=3)
        >>> bool(chaitanya_local(f, f, grid, n_neg=2) < chaitanya_local(f, -f, grid, n_neg=2))
        True
    """
    if f1.ndim != 4 or f1.shape != f2.shape:
        raise ValueError(f"chaitanya_local: expected two (B, C, H, W) maps of the same shape, got "
                         f"{tuple(f1.shape)} and {tuple(f2.shape)}")
    b, _, h, w = f1.shape
    corners = grid.corners(h, w).to(f1.device)  # (R, 2)
    r = len(corners)
    e = torch.cat([pool_regions(f1, corners, grid.px), pool_regions(f2, corners, grid.px)], dim=1)  # (B, 2R, C)
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


def medmoco_local(e1: torch.Tensor, e2: torch.Tensor, valid: torch.Tensor,
                  temperature: float = 0.2) -> torch.Tensor:
    """Med-MoCo's local loss on region embeddings pooled at the same image locations in two views.

    With u the L2-normalised region embeddings of both views and s = u . u' / t, region i of
    image b in one view has as positive region i of b in the other view and as negatives the
    other regions of b (both views); invalid regions are neither anchors nor candidates:

        L = mean_(b, i valid, view) -log( exp(s_pos) / sum_{a != self, a valid, same b} exp(s_a) ).

    The regions and their pooling are the caller's (:func:`medkit.data.regions.aligned_regions`,
    :func:`medkit.data.regions.pool_at`), so that this function sees tensors only.

    Args:
        e1, e2: (B, R, C) embeddings of R regions per image in view 1 and view 2.
        valid: (B, R) regions seen by both views.
        temperature: t.

    Returns:
        the mean over valid regions and both directions.
    """
    if e1.ndim != 3 or e1.shape != e2.shape or valid.shape != e1.shape[:2]:
        raise ValueError(f"medmoco_local: expected (B, R, C) embeddings of equal shape and (B, R) valid, got "
                         f"{tuple(e1.shape)}, {tuple(e2.shape)} and {tuple(valid.shape)}")
    b, r, _ = e1.shape
    e = F.normalize(torch.cat([e1, e2], 1).reshape(b * 2 * r, -1), dim=1)  # (M, C), (b, view, i)
    sim = e @ e.T / temperature  # (M, M)
    img = torch.arange(b, device=e.device).repeat_interleave(2 * r)
    view = torch.arange(2, device=e.device).repeat_interleave(r).repeat(b)
    reg = torch.arange(r, device=e.device).repeat(2 * b)
    ok = valid.repeat(1, 2).reshape(-1)  # (M,)
    same_img = (img[:, None] == img[None, :]) & ok[None, :]
    eye = torch.eye(len(e), dtype=torch.bool, device=e.device)
    positives = same_img & (reg[:, None] == reg[None, :]) & (view[:, None] != view[None, :])
    allowed = same_img & ~eye
    return masked_contrastive(sim, positives, allowed, weight=ok.float())

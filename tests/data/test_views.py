"""Correspondences between views are exact: an image whose pixels encode their own coordinates."""
from __future__ import annotations

import torch

from medkit.data.augment import AugmentConfig
from medkit.data.views import (INTENSITY_ONLY, ViewConfig, make_views, map_points, pixel_grid, pixel_pairs, view_affine,
                               warp_to_view)

NO_INTENSITY = AugmentConfig(gamma=(1, 1), contrast=(1, 1), brightness=0, noise=0)


def coordinate_image(b: int, n: int) -> torch.Tensor:
    """(B, 2, n, n): channel 0 holds each pixel's x, channel 1 its y (pixel centres, mapped to [0, 1]
    because intensities are clamped there)."""
    return (pixel_grid(b, n, n).transpose(1, 2).reshape(b, 2, n, n) + 1) / 2


def test_warped_view2_lands_on_view1_exactly():
    g = torch.Generator().manual_seed(0)
    cfg = ViewConfig(crop_scale=(0.3, 0.9), rotate=90, flip=True, intensity=NO_INTENSITY)
    src = coordinate_image(6, 64)
    v = make_views(src, cfg, cfg, g)
    warped, valid = warp_to_view(v.x2, v.theta1, v.theta2)
    assert valid.float().mean() > 0.1  # the views overlap somewhere
    err = (warped - v.x1).abs().amax(1)[valid]  # (n_valid,)
    assert err.max() < 1e-4
    # and every value in view 1 is the source coordinate of its pixel (equivariance)
    p1 = pixel_grid(6, 64, 64)
    srcpts = p1 @ v.theta1[:, :, :2].transpose(1, 2) + v.theta1[:, None, :, 2]
    both = valid.view(6, -1)
    assert (v.x1.flatten(2).transpose(1, 2)[both] - (srcpts[both] + 1) / 2).abs().max() < 1e-4


def test_pixel_pairs_sample_the_warp_exactly_and_only_seen_pixels():
    """Pix2Rep's O(M) pairs: view 2's coordinate image, combined at the 4 neighbours with the
    bilinear weights, gives each sampled view-1 pixel's own source coordinate."""
    g = torch.Generator().manual_seed(1)
    cfg = ViewConfig(crop_scale=(0.3, 0.9), rotate=90, flip=True, intensity=NO_INTENSITY)
    v = make_views(coordinate_image(6, 64), cfg, cfg, g)
    idx1, idx2, w = pixel_pairs(v.theta1, v.theta2, (64, 64), 500, g)
    assert idx1.shape == (500,) and idx2.shape == w.shape == (500, 4)
    warped, valid = warp_to_view(v.x2, v.theta1, v.theta2)
    assert valid.reshape(-1)[idx1].all()  # only pixels both views see
    flat2 = v.x2.permute(0, 2, 3, 1).reshape(-1, 2)
    ours = (w[:, :, None] * flat2[idx2]).sum(1)  # (M, 2)
    assert (ours - warped.permute(0, 2, 3, 1).reshape(-1, 2)[idx1]).abs().max() < 1e-5
    assert (ours - v.x1.permute(0, 2, 3, 1).reshape(-1, 2)[idx1]).abs().max() < 1e-4
    assert torch.allclose(w.sum(1), torch.ones(500)) and (w >= 0).all()


def test_out_of_view_pixels_are_excluded():
    # view 2 sees only the left half of the source, view 1 all of it
    left = torch.tensor([[[0.5, 0.0, -0.5], [0.0, 1.0, 0.0]]])
    full = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])
    warped, valid = warp_to_view(torch.ones(1, 1, 32, 32), full, left)
    p1 = pixel_grid(1, 32, 32).view(32, 32, 2)
    assert not valid[0][p1[..., 0] > 0].any()  # the right half of view 1 is not in view 2
    assert valid[0][(p1[..., 0] < -0.2) & (p1[..., 0] > -0.8) & (p1[..., 1].abs() < 0.8)].all()


def test_map_points_round_trip_and_intensity_only_views_align():
    g = torch.Generator().manual_seed(1)
    t1, t2 = view_affine(3, ViewConfig(rotate=45), g), view_affine(3, ViewConfig(rotate=45), g)
    p = torch.rand(3, 10, 2) * 2 - 1
    torch.testing.assert_close(map_points(map_points(p, t1, t2), t2, t1), p, atol=1e-5, rtol=0)
    v = make_views(torch.rand(2, 1, 16, 16), INTENSITY_ONLY, INTENSITY_ONLY, g)
    torch.testing.assert_close(v.theta1, v.theta2)  # same geometry: positions correspond 1:1

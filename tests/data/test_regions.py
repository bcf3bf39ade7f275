"""Regions seen by both views are pooled at the same image location in each."""
from __future__ import annotations

import torch

from medkit.data.augment import AugmentConfig
from medkit.data.regions import aligned_regions, pool_at
from medkit.data.views import ViewConfig, make_views, pixel_grid, resample

NO_INTENSITY = AugmentConfig(gamma=(1, 1), contrast=(1, 1), brightness=0, noise=0)


def _early_layer_views(seed=0):
    torch.manual_seed(seed)  # the batch and the layer's initialisation: independent of test order
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(4, 1, 32, 32)
    cfg = ViewConfig(crop_scale=(0.5, 0.9), rotate=30, intensity=NO_INTENSITY)
    return make_views(x, cfg, cfg, g), g


def test_medmoco_regions_are_at_the_same_image_location():
    """Pooling a coordinate image gives the same values in both views for every valid region."""
    v, g = _early_layer_views(1)
    src = (pixel_grid(4, 32, 32).transpose(1, 2).reshape(4, 2, 32, 32) + 1) / 2
    c1, _, valid = aligned_regions(4, 6, v.theta1, v.theta2, g, size=0.1)
    e1 = pool_at(resample(src, v.theta1), c1, None, None, 0.1)
    e2 = pool_at(resample(src, v.theta2), c1, v.theta1, v.theta2, 0.1)
    assert valid.any() and (e1 - e2)[valid].abs().max() < 1e-3

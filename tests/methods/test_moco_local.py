"""Med-MoCo's local loss on a trainable early map: geometry from the views, the loss from losses/."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from medkit.data.augment import AugmentConfig
from medkit.data.views import ViewConfig, make_views
from medkit.methods.moco_v2 import local_region_loss

NO_INTENSITY = AugmentConfig(gamma=(1, 1), contrast=(1, 1), brightness=0, noise=0)


def test_medmoco_local_moves_the_early_layer():
    """Trained with the local loss alone, an early conv layer moves and tells regions apart better
    (held-out regions). Smooth images: on white noise every region pools to the same mean."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    x = F.interpolate(torch.rand(4, 1, 4, 4), size=(32, 32), mode="bilinear", align_corners=False)
    cfg = ViewConfig(crop_scale=(0.5, 0.9), rotate=30, intensity=NO_INTENSITY)
    v = make_views(x, cfg, cfg, g)
    conv = torch.nn.Conv2d(1, 8, 3, padding=1)
    before = conv.weight.detach().clone()

    def held_out():  # the same 8 regions per image before and after training
        with torch.no_grad():
            return float(local_region_loss(conv(v.x1), conv(v.x2), v.theta1, v.theta2,
                                           torch.Generator().manual_seed(99), n_regions=8, size=0.15))
    untrained = held_out()
    opt = torch.optim.Adam(conv.parameters(), lr=0.01)
    for step in range(30):
        loss = local_region_loss(conv(v.x1), conv(v.x2), v.theta1, v.theta2, torch.Generator().manual_seed(step),
                                 n_regions=8, size=0.15)
        opt.zero_grad()
        loss.backward()
        assert conv.weight.grad.abs().sum() > 0
        opt.step()
    assert (conv.weight - before).abs().max() > 1e-2
    assert held_out() < untrained - 0.3

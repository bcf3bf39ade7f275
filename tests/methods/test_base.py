"""What methods share: the pooled embedding h, same-view augmentation, and the chunk option that
changes memory, never the loss."""
from __future__ import annotations

import pytest
import torch

from medkit.data.batches import Batch
from medkit.data.views import ViewConfig
from medkit.methods import build_method
from medkit.methods.base import pooled, same_views

TINY = {"channels": (8, 16, 32, 64)}


def test_pooled_is_the_global_average_and_h_of_every_method():
    fmap = torch.arange(2 * 3 * 2 * 2, dtype=torch.float).reshape(2, 3, 2, 2)  # (B, C, h, w)
    torch.testing.assert_close(pooled(fmap)[0], torch.tensor([1.5, 5.5, 9.5]))
    torch.manual_seed(0)
    x = torch.rand(2, 1, 32, 32)
    for name, over in [("simclr", {}), ("moco_v2", {"queue": 16}), ("pix2rep", {}), ("ideal", {})]:
        m = build_method(name, {**TINY, **over}).eval()
        bottleneck = m.net.encode(x)[-1]  # (B, C, h, w)
        torch.testing.assert_close(m.embed(x)["h"], bottleneck.mean((2, 3)), msg=name)


def test_same_views_gives_one_config_twice():
    v = ViewConfig(crop_scale=(0.4, 0.8))
    assert same_views(v) == (v, v)
    assert build_method("simclr", TINY).views == (ViewConfig(crop_scale=(0.3, 1.0)),) * 2


@pytest.mark.parametrize("name, over, term", [("pix2rep", {"pixels": 48}, "pixel_infonce"),
                                               ("ideal", {"feature_level": 1}, "dense")])
def test_the_chunk_option_keeps_loss_and_gradients(name, over, term):
    torch.manual_seed(0)
    batch = Batch(torch.rand(4, 1, 32, 32), torch.arange(4) % 2, torch.arange(4) // 2)
    out = []
    for chunk in (0, 7):
        torch.manual_seed(1)
        m = build_method(name, {**TINY, **over, "chunk": chunk})
        loss = m(batch, torch.Generator().manual_seed(2), 0)[term]
        loss.backward()
        out.append((loss.detach(), m.net.encoder[0][0].conv.weight.grad.clone()))
    torch.testing.assert_close(out[1][0], out[0][0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out[1][1], out[0][1], atol=1e-5, rtol=1e-5)

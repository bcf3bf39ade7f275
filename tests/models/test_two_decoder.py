"""IDEAL's two-decoder network."""
from __future__ import annotations

import torch

from medkit.eval.probes import segmentation_model
from medkit.models.two_decoder import TwoDecoderNet
from medkit.models.unet import UNet


def test_two_decoders_and_their_average():
    net = UNet(1, 0, (8, 16, 32))
    two = segmentation_model(net, 4, "consistency")
    assert isinstance(two, TwoDecoderNet)
    a, b = two.both(torch.rand(2, 1, 32, 32))
    assert a.shape == b.shape == (2, 4, 32, 32) and not torch.allclose(a, b)
    p = two(torch.rand(2, 1, 32, 32)).exp().sum(1)  # averaged probabilities sum to one
    torch.testing.assert_close(p, torch.ones(2, 32, 32), atol=1e-5, rtol=0)

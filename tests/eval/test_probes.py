"""Segmentation models on a pretrained U-Net: what is frozen stays frozen, what is loaded is loaded."""
from __future__ import annotations

import pytest
import torch

from medkit.errors import MedkitError
from medkit.eval.probes import LinearProbe, segmentation_model
from medkit.models.unet import UNet


def test_linear_probe_trains_only_its_head():
    net = UNet(1, 0, (8, 16, 32))
    probe = segmentation_model(net, 4, "linear")
    assert isinstance(probe, LinearProbe)
    before = {k: v.clone() for k, v in probe.net.state_dict().items()}
    opt = torch.optim.SGD([p for p in probe.parameters() if p.requires_grad], lr=0.1)
    probe.train()
    for _ in range(2):
        loss = probe(torch.rand(2, 1, 32, 32)).logsumexp(1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = probe.net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # weights and BN statistics
    assert probe(torch.rand(1, 1, 32, 32)).shape == (1, 4, 32, 32)


def test_finetune_starts_from_the_pretrained_weights():
    net = UNet(1, 0, (8, 16, 32))
    with torch.no_grad():
        net.encoder[0][0].conv.weight.fill_(0.123)
    seg = segmentation_model(net, 3, "finetune")
    assert torch.all(seg.encoder[0][0].conv.weight == 0.123)
    assert all(p.requires_grad for p in seg.parameters())
    with pytest.raises(MedkitError, match="--eval-protocol"):
        segmentation_model(net, 3, "knn")

"""Few-label evaluation of pretrained networks: what is frozen stays frozen, what is loaded is loaded."""
from __future__ import annotations

import json

import pytest
import torch

from medkit.cli import main
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
    with pytest.raises(MedkitError, match="--protocol"):
        segmentation_model(net, 3, "knn")


def test_pretrain_then_evaluate_from_the_command_line(tmp_path, capsys):
    common = ["--data", "phantom", "--image-size", "32", "--val-every", "2", "--quiet"]
    assert main(["pretrain", "--method", "simclr", "--set", "channels=8,16,32,64", "--out", str(tmp_path / "p"),
                 "--steps", "3", *common]) == 0
    params = json.loads((tmp_path / "p" / "params.json").read_text())
    assert params["config"]["channels"] == [8, 16, 32, 64]
    for proto in ("linear", "finetune", "consistency"):
        out = tmp_path / proto
        assert main(["evaluate", "--checkpoint", str(tmp_path / "p"), "--protocol", proto, "--labelled", "1",
                     "--combos", "1", "--steps", "3", "--out", str(out), *common]) == 0
        m = json.loads((out / "metrics.json").read_text())
        assert 0 <= m["by_k"]["1"]["mean"]["dice_mean"] <= 1
    assert main(["pretrain", "--method", "simclr", "--set", "tau=1", "--out", str(tmp_path / "q"), *common]) == 2
    assert "unknown option(s) tau" in capsys.readouterr().err and not (tmp_path / "q").exists()


def test_two_decoders_and_their_average():
    from medkit.eval.consistency import TwoDecoderNet
    net = UNet(1, 0, (8, 16, 32))
    two = segmentation_model(net, 4, "consistency")
    assert isinstance(two, TwoDecoderNet)
    a, b = two.both(torch.rand(2, 1, 32, 32))
    assert a.shape == b.shape == (2, 4, 32, 32) and not torch.allclose(a, b)
    p = two(torch.rand(2, 1, 32, 32)).exp().sum(1)  # averaged probabilities sum to one
    torch.testing.assert_close(p, torch.ones(2, 32, 32), atol=1e-5, rtol=0)

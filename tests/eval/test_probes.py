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
    with pytest.raises(MedkitError, match="eval_protocol"):
        segmentation_model(net, 3, "knn")


def test_encoder_transfer_keeps_the_random_baselines_decoder():
    """--transfer encoder: encoder weights from the pretrained net, decoder and head exactly as the
    random baseline initialises them under the same seed."""
    net = UNet(1, 0, (8, 16, 32))
    with torch.no_grad():
        for p in net.parameters():
            p.fill_(0.5)
    torch.manual_seed(3)
    random_init = segmentation_model(None, 3, "finetune", (8, 16, 32))
    torch.manual_seed(3)
    enc_only = segmentation_model(net, 3, "finetune", transfer="encoder")
    torch.manual_seed(3)
    whole = segmentation_model(net, 3, "finetune", transfer="all")
    for name, p in enc_only.named_parameters():
        if name.startswith("encoder."):
            assert torch.all(p == 0.5), name
        else:
            assert torch.equal(p, dict(random_init.named_parameters())[name]), name
    assert torch.all(whole.decoder[0].conv.weight == 0.5)
    with pytest.raises(MedkitError, match="transfer must be"):
        segmentation_model(net, 3, "finetune", transfer="decoder")


def test_command_line_choices_match_the_library():
    from medkit import cli
    from medkit.eval.probes import PROTOCOLS, TRANSFERS
    assert cli.EVAL_PROTOCOLS == PROTOCOLS and cli.TRANSFERS == TRANSFERS


def test_wide_output_map_reaches_every_model():
    """A U-Net with a wide full-resolution output (Pix2Rep's out_width) keeps it in the linear probe's
    hypercolumn, the fine-tuned network and the random baseline built like it."""
    net = UNet(1, 0, (8, 16, 32), out_width=12)
    x = torch.rand(2, 1, 32, 32)
    assert net.features(x)["out"].shape == (2, 12, 32, 32) and net.feature_channels == 12
    probe = segmentation_model(net, 4, "linear")
    assert probe.head.in_channels == (8 + 16 + 32) + (8 + 16) + 12  # encoder + decoder + the wide output
    assert probe(x).shape == (2, 4, 32, 32)
    with torch.no_grad():
        net.final[1].conv.weight.fill_(0.25)
    whole = segmentation_model(net, 3, "finetune")
    assert torch.all(whole.final[1].conv.weight == 0.25) and whole.head.in_channels == 12
    assert whole(x).shape == (2, 3, 32, 32)
    torch.manual_seed(5)
    like = segmentation_model(None, 3, "finetune", (8, 16, 32), out_width=12)
    torch.manual_seed(5)
    enc_only = segmentation_model(net, 3, "finetune", transfer="encoder")
    assert torch.equal(enc_only.final[1].conv.weight, like.final[1].conv.weight)  # as the random baseline's
    assert segmentation_model(net, 3, "consistency")(x).shape == (2, 3, 32, 32)
    assert UNet(1, 0, (8, 16, 32)).final.__class__.__name__ == "Upsample"  # out_width 0: no parameters
    with pytest.raises(ValueError, match="out_width"):
        UNet(1, 0, (8, 16, 32), out_width=-1)

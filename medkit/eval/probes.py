"""Segmentation models built on a pretrained U-Net: linear probe and fine-tuning.

* ``linear``: the pretrained U-Net is frozen (BatchNorm in evaluation mode too) and only a 1x1
  convolution is trained, over the concatenation of every encoder and decoder map upsampled to
  half the input resolution (a hypercolumn), each channel standardised (BatchNorm without affine
  parameters); logits are upsampled bilinearly to the input. Dense
  SSL papers probe with a 1x1 conv on the last map (Pix2Rep); the hypercolumn gives encoder-only
  methods (SimCLR, MoCo, Chaitanya's global stage, IDEAL) a fair readout of what they learnt.
* ``finetune``: the pretrained U-Net plus a fresh 1x1 segmentation head, everything trained.
* ``consistency``: IDEAL's fine-tuning, two decoders with cross-consistency on the unlabelled
  pool (:class:`medkit.models.two_decoder.TwoDecoderNet`).

With no pretrained network (``net=None``) the same models start from random initialisation:
the baselines every table needs (a frozen random encoder for ``linear``).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from medkit.errors import MedkitError
from medkit.models.heads import segmentation_head
from medkit.models.unet import DEFAULT_CHANNELS, UNet

PROTOCOLS = ("linear", "finetune", "consistency")
TRANSFERS = ("all", "encoder")


class LinearProbe(nn.Module):
    """Frozen U-Net + trainable 1x1 conv over its hypercolumn.

    Shapes: (B, 1, H, W) -> logits (B, n_classes, H, W).
    """

    def __init__(self, net: UNet, n_classes: int) -> None:
        super().__init__()
        self.net = net
        for p in self.net.parameters():
            p.requires_grad_(False)
        chans = sum(net.channels) + sum(net.channels[:-1]) + net.feature_channels  # enc + dec + out
        # maps of different depths differ in scale by orders of magnitude (a random network's
        # above all): standardise each channel (BatchNorm without affine parameters, which is
        # still a linear map at evaluation) before the 1x1 conv, as MAE's linear probe does
        self.norm = nn.BatchNorm2d(chans, affine=False)
        self.head = segmentation_head(chans, n_classes)

    def train(self, mode: bool = True) -> LinearProbe:
        super().train(mode)
        self.net.eval()  # frozen means frozen statistics too
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        with torch.no_grad():
            maps = self.net.features(x)
        size = (h // 2, w // 2)
        cols = [F.interpolate(m, size=size, mode="bilinear", align_corners=False) if m.shape[-2:] != size
                else m for m in maps.values()]
        logits = self.head(self.norm(torch.cat(cols, dim=1)))  # (B, n_classes, H/2, W/2)
        return F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=False)


def segmentation_model(net: UNet | None, n_classes: int, protocol: str,
                       channels: tuple[int, ...] = DEFAULT_CHANNELS, transfer: str = "all",
                       out_width: int = 0) -> nn.Module:
    """A segmentation network for ``protocol`` from a pretrained U-Net (or random init if None).

    Args:
        transfer: ``"all"`` loads the whole pretrained U-Net; ``"encoder"`` only its encoder, the
            decoder keeping the fresh initialisation the random baseline gets under the same seed
            (a pretrained decoder can be a poor start for fine-tuning: Pix2Rep's at CPU scale).
        channels, out_width: the architecture of a random-initialisation network (``net`` None);
            a pretrained ``net`` brings its own.
    """
    if protocol not in PROTOCOLS:
        raise MedkitError(f"eval_protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
    if transfer not in TRANSFERS:
        raise MedkitError(f"transfer must be one of {', '.join(TRANSFERS)}, got {transfer!r}")
    base = UNet(1, 0, channels, out_width) if net is None else UNet(1, 0, net.channels, net.out_width)
    if net is not None:
        state = net.state_dict()
        if transfer == "encoder":
            state = {k: v for k, v in state.items() if k.startswith("encoder.")}
        missing, unexpected = base.load_state_dict(state, strict=transfer == "all")
        assert not unexpected, unexpected
    if protocol == "linear":
        return LinearProbe(base, n_classes)
    if protocol == "consistency":
        from medkit.models.two_decoder import TwoDecoderNet
        return TwoDecoderNet(base, n_classes)
    seg = UNet(1, n_classes, base.channels, base.out_width)
    missing, unexpected = seg.load_state_dict(base.state_dict(), strict=False)
    assert not unexpected and all(k.startswith("head.") for k in missing), (missing, unexpected)
    return seg

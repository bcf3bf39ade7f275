"""IDEAL's fine-tuning network: a shared (pretrained) encoder and two decoders of different design
(Basak et al., ICASSP 2023).

Decoder A is the U-Net's own (transposed-conv upsampling); decoder B upsamples bilinearly and
then convolves. On a labelled batch both are trained against the mask (cross-entropy in the paper,
Dice + cross-entropy in medkit as in its other fine-tuning); on an unlabelled batch each decoder's
confident hard prediction (stop-gradient) supervises the other
(:func:`medkit.losses.consistency.cross_consistency`, trained by
:func:`medkit.engine.fit.fit_cross_consistency`). At test time the two softmax outputs are averaged.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from medkit.models.heads import segmentation_head
from medkit.models.unet import UNet, conv_block


class BilinearDecoder(nn.Module):
    """U-Net decoder that upsamples bilinearly, then concatenates the skip and convolves."""

    def __init__(self, channels: tuple[int, ...], n_classes: int) -> None:
        super().__init__()
        self.reduce = nn.ModuleList([nn.Conv2d(cd, cs, 1) for cd, cs in zip(channels[:0:-1], channels[-2::-1])])
        self.blocks = nn.ModuleList([conv_block(2 * cs, cs) for cs in channels[-2::-1]])
        self.head = segmentation_head(channels[0], n_classes)

    def forward(self, enc: list[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
        x = enc[-1]
        for reduce, block, skip in zip(self.reduce, self.blocks, enc[-2::-1]):
            x = F.interpolate(reduce(x), size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], 1))
        return F.interpolate(self.head(x), size=size, mode="bilinear", align_corners=False)


class TwoDecoderNet(nn.Module):
    """Shared encoder, decoder A (the U-Net's, transposed convs) and decoder B (bilinear).

    ``forward`` returns the mean of the two softmax outputs as log-probabilities (B, K, H, W),
    so that evaluation can treat it as any segmentation network; :meth:`both` gives the two
    logits for training.
    """

    def __init__(self, net: UNet, n_classes: int) -> None:
        super().__init__()
        self.unet = UNet(1, n_classes, net.channels, net.out_width)
        self.unet.load_state_dict(net.state_dict(), strict=False)  # encoder (+ decoder A) weights
        self.decoder_b = BilinearDecoder(net.channels, n_classes)

    def both(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        enc = self.unet.encode(x)
        a = self.unet.head(self.unet.decode(enc)[-1])  # (B, K, H, W)
        return a, self.decoder_b(enc, x.shape[-2:])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.both(x)
        return torch.log(0.5 * (a.softmax(1) + b.softmax(1)) + 1e-8)

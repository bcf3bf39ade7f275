"""Decoders that turn encoder maps into a segmentation: DeepLabv3+.

DeepLabv3+ (Chen et al., ECCV 2018): atrous spatial pyramid pooling (MONAI's ``SimpleASPP``)
on the deepest map, upsampled to the 1/4-resolution map, concatenated with its 1x1-reduced
low-level features, two conv3x3, a 1x1 head, and bilinear upsampling to the input size.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from monai.networks.blocks import Convolution, SimpleASPP
from torch import nn


class DeepLabV3PlusDecoder(nn.Module):
    """DeepLabv3+ decoder head.

    Args:
        low_channels: channels of the 1/4-resolution encoder map (ResNet layer1).
        high_channels: channels of the deepest map (ResNet layer4).
        out_channels: classes, background included.
        width: channels of the decoder (ASPP gives 4 x width // 4).

    Shapes: low (B, low_channels, H/4, W/4), high (B, high_channels, h, w) -> (B, out, H/4, W/4).
    """

    def __init__(self, low_channels: int, high_channels: int, out_channels: int, width: int = 128) -> None:
        super().__init__()
        self.aspp = SimpleASPP(2, high_channels, width // 4, kernel_sizes=(1, 3, 3, 3),
                               dilations=(1, 2, 4, 6), norm_type="batch", acti_type="relu")
        self.reduce = Convolution(2, low_channels, 48, kernel_size=1, norm="batch", act="relu")
        self.fuse = nn.Sequential(
            Convolution(2, width + 48, width, kernel_size=3, norm="batch", act="relu"),
            Convolution(2, width, width, kernel_size=3, norm="batch", act="relu"))
        self.head = nn.Conv2d(width, out_channels, 1)

    def forward(self, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        a = self.aspp(high)  # (B, width, h, w)
        a = F.interpolate(a, size=low.shape[-2:], mode="bilinear", align_corners=False)
        return self.head(self.fuse(torch.cat([a, self.reduce(low)], dim=1)))  # (B, out, H/4, W/4)


class ResNetDeepLab(nn.Module):
    """ResNet encoder + DeepLabv3+ decoder; logits at the input size (B, out, H, W).

    Example:
        >>> from medkit.models.resnet import ResNetEncoder
        >>> enc = ResNetEncoder(18)
        >>> net = ResNetDeepLab(enc, DeepLabV3PlusDecoder(enc.channels[1], enc.channels[4], 4))
        >>> net(torch.zeros(2, 1, 64, 64)).shape
        torch.Size([2, 4, 64, 64])
    """

    def __init__(self, encoder: nn.Module, decoder: DeepLabV3PlusDecoder) -> None:
        super().__init__()
        self.encoder, self.decoder = encoder, decoder

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.encoder(x)
        out = self.decoder(feats[1], feats[-1])
        return F.interpolate(out, size=x.shape[-2:], mode="bilinear", align_corners=False)

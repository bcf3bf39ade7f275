"""A 2D U-Net built from MONAI blocks, with every encoder and decoder feature map reachable.

MONAI's own ``UNet`` nests its levels inside each other, so that intermediate maps are hard to
reach; the pretraining methods need them (Chaitanya's local loss on decoder maps, Med-MoCo's
local loss on an early encoder map, Pix2Rep and IDEAL on the full-resolution output). Here the
levels are flat lists (the arrangement of MONAI's UNet, which keeps CPU cost low by never
convolving at full resolution):

    encoder[i]: 1/2**(i+1) resolution, channels[i]     (stride-2 conv3x3-BN-ReLU, + conv for i >= 2)
    decoder[j]: up one level, channels[L-2-j]          (transposed conv, concat skip, conv)
    final:      full resolution, channels[0]           (bilinear upsampling of decoder[-1])
    head:       1x1 conv to the classes

Reference: Ronneberger et al., MICCAI 2015; blocks from MONAI (``monai.networks.blocks``).
"""
from __future__ import annotations

import torch
from monai.networks.blocks import Convolution
from torch import nn

from medkit.models.heads import segmentation_head

DEFAULT_CHANNELS: tuple[int, ...] = (16, 32, 64, 128, 256)
"""The kit's U-Net widths, top to bottom: five levels, a 256-channel bottleneck at 1/32 resolution."""


def conv_block(cin: int, cout: int, stride: int = 1) -> Convolution:
    """conv3x3 (stride) -> BatchNorm -> ReLU."""
    return Convolution(2, cin, cout, strides=stride, kernel_size=3, norm="batch", act="relu")


class UNet(nn.Module):
    """2D U-Net with reachable feature maps.

    Args:
        in_channels: image channels (1 for MRI/CT).
        out_channels: segmentation classes, background included (0: no head, features only).
        channels: channels per level, top to bottom; len(channels) levels, L - 1 down-samplings.
        out_width: channels of the full-resolution output map ``out``. 0: the last decoder map
            (channels[0]) upsampled bilinearly, no parameters; > 0: upsampled, then a 3x3 conv
            block to ``out_width`` channels (Pix2Rep's wide output map: 1024 in the paper).

    Shapes: input (B, in, H, W) with H, W divisible by 2**L; output (B, out, H, W).

    Example:
        >>> net = UNet(1, 4, (8, 16, 32))
        >>> net(torch.zeros(2, 1, 32, 32)).shape
        torch.Size([2, 4, 32, 32])
    """

    def __init__(self, in_channels: int = 1, out_channels: int = 4,
                 channels: tuple[int, ...] = DEFAULT_CHANNELS, out_width: int = 0) -> None:
        super().__init__()
        if len(channels) < 2:
            raise ValueError(f"UNet needs at least 2 levels, got channels={channels}")
        if out_width < 0:
            raise ValueError(f"out_width must be 0 (no output conv) or a number of channels, got {out_width}")
        self.channels = tuple(channels)
        self.out_width = out_width
        self.encoder = nn.ModuleList()
        for i, (cin, cout) in enumerate(zip((in_channels,) + self.channels[:-1], self.channels)):
            block = [conv_block(cin, cout, stride=2)] + ([conv_block(cout, cout)] if i >= 2 else [])
            self.encoder.append(nn.Sequential(*block))
        self.up = nn.ModuleList()
        self.decoder = nn.ModuleList()
        for cdeep, cskip in zip(channels[:0:-1], channels[-2::-1]):
            self.up.append(Convolution(2, cdeep, cskip, strides=2, kernel_size=3, norm="batch",
                                       act="relu", is_transposed=True))
            self.decoder.append(conv_block(2 * cskip, cskip))
        # bilinear, not a transposed conv: a full-resolution conv costs a large share of a CPU step,
        # so it is there only when a wide output map is asked for
        upsample = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.final = upsample if out_width == 0 else nn.Sequential(upsample, conv_block(channels[0], out_width))
        self.head = segmentation_head(self.feature_channels, out_channels) if out_channels > 0 else nn.Identity()

    @property
    def feature_channels(self) -> int:
        """Channels of the full-resolution output map ``out`` (the input of the head)."""
        return self.out_width or self.channels[0]

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Encoder maps, finest first: [(B, c0, H/2, W/2), ..., (B, c_{L-1}, H/2**L, W/2**L)]."""
        f = 2 ** len(self.encoder)
        if x.shape[-1] % f or x.shape[-2] % f:
            raise ValueError(f"UNet with {len(self.encoder)} levels needs H and W divisible by {f}, "
                             f"got {tuple(x.shape[-2:])}")
        feats = []
        for block in self.encoder:
            x = block(x)
            feats.append(x)
        return feats

    def decode(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        """Decoder maps, coarsest first; the last one is the full-resolution output (B, C_out, H, W)."""
        x, out = feats[-1], []
        for up, block, skip in zip(self.up, self.decoder, feats[-2::-1]):
            x = block(torch.cat([up(x), skip], dim=1))  # (B, 2 c, h, w) -> (B, c, h, w)
            out.append(x)
        out.append(self.final(x))  # (B, out_width or c0, H, W)
        return out

    def features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every map by name: ``enc0`` .. ``enc{L-1}`` (fine to coarse), ``dec{L-2}`` .. ``dec0``
        (coarse to fine; ``decK`` has the resolution of ``encK``) and ``out``, full resolution."""
        return self.features_from(self.encode(x))

    def features_from(self, enc: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        """:meth:`features` from already computed encoder maps (e.g. under ``no_grad``)."""
        dec = self.decode(enc)
        names = {f"enc{i}": f for i, f in enumerate(enc)}
        n = len(dec) - 1
        names.update({f"dec{n - 1 - j}": f for j, f in enumerate(dec[:-1])})
        names["out"] = dec[-1]
        return names

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (B, out_channels, H, W)."""
        return self.head(self.decode(self.encode(x))[-1])

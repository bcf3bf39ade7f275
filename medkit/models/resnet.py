"""ResNet-18/50 encoders for 1-channel 2D input that expose their intermediate maps.

Built on MONAI's ResNet with ``conv1_t_stride=2``: MONAI defaults to a stride-1 first layer,
four times the compute of the usual (torchvision) stem.

Reference: He et al., CVPR 2016.
"""
from __future__ import annotations

import torch
from monai.networks.nets import resnet18, resnet50
from torch import nn


class ResNetEncoder(nn.Module):
    """A ResNet returning its five maps.

    Args:
        depth: 18 or 50.
        in_channels: image channels.

    Shapes: input (B, in, H, W) -> [stem (B, 64, H/2, W/2), layer1 (B, c1, H/4, W/4),
    layer2 (H/8), layer3 (H/16), layer4 (B, c4, H/32, W/32)], with c1..c4 = 64..512 (depth 18)
    or 256..2048 (depth 50).

    Example:
        >>> [f.shape[1] for f in ResNetEncoder(18)(torch.zeros(1, 1, 64, 64))]
        [64, 64, 128, 256, 512]
    """

    def __init__(self, depth: int = 18, in_channels: int = 1) -> None:
        super().__init__()
        makers = {18: resnet18, 50: resnet50}
        if depth not in makers:
            raise ValueError(f"ResNet depth must be 18 or 50, got {depth}")
        net = makers[depth](spatial_dims=2, n_input_channels=in_channels, conv1_t_stride=2,
                            feed_forward=False)
        self.stem = nn.Sequential(net.conv1, net.bn1, net.act)
        self.pool = net.maxpool
        self.layers = nn.ModuleList([net.layer1, net.layer2, net.layer3, net.layer4])
        expansion = 4 if depth == 50 else 1
        self.channels = (64, 64 * expansion, 128 * expansion, 256 * expansion, 512 * expansion)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)  # (B, 64, H/2, W/2)
        feats = [x]
        x = self.pool(x)  # (B, 64, H/4, W/4)
        for layer in self.layers:
            x = layer(x)
            feats.append(x)
        return feats

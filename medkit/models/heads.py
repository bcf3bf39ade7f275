"""Heads on top of features: segmentation (1x1 conv), projection MLP, dense 1x1-conv projector."""
from __future__ import annotations

from torch import nn


def segmentation_head(in_channels: int, n_classes: int) -> nn.Conv2d:
    """A 1x1 convolution from features (B, in_channels, H, W) to logits (B, n_classes, H, W).

    On a frozen encoder this is the linear probe of dense SSL (Pix2Rep, Seince et al. 2024).
    """
    return nn.Conv2d(in_channels, n_classes, kernel_size=1)


def projection_mlp(dims: tuple[int, ...], batch_norm: bool = True) -> nn.Sequential:
    """MLP projector (N, dims[0]) -> (N, dims[-1]): Linear-(BN)-ReLU between layers, plain last.

    MoCo v2: (2048, 2048, 128); Chaitanya et al.: (flattened, 1024, 128).
    """
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(dims) - 2:
            layers += [nn.BatchNorm1d(b)] if batch_norm else []
            layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def projection_conv(dims: tuple[int, ...]) -> nn.Sequential:
    """Dense projector of 1x1 convolutions (B, dims[0], H, W) -> (B, dims[-1], H, W).

    IDEAL: one 1x1-conv head; Pix2Rep: 1024 -> 256 -> 256; Chaitanya's local head: two 1x1 convs.
    """
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
        layers.append(nn.Conv2d(a, b, kernel_size=1))
        if i < len(dims) - 2:
            layers += [nn.BatchNorm2d(b), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)

"""Build a segmentation network by name."""
from __future__ import annotations

from torch import nn

from medkit.errors import MedkitError
from medkit.models.decoders import DeepLabV3PlusDecoder, ResNetDeepLab
from medkit.models.resnet import ResNetEncoder
from medkit.models.unet import DEFAULT_CHANNELS, UNet

MODELS = ("unet", "unet-small", "resnet18-deeplab", "resnet50-deeplab")


def build_model(name: str, n_classes: int, in_channels: int = 1) -> nn.Module:
    """A segmentation network (B, in, H, W) -> logits (B, n_classes, H, W).

    Args:
        name: ``unet`` (channels 16-32-64-128-256), ``unet-small`` (8-16-32-64, for tests),
            ``resnet18-deeplab`` or ``resnet50-deeplab``.
        n_classes: classes, background included.
    """
    if name == "unet":
        return UNet(in_channels, n_classes, DEFAULT_CHANNELS)
    if name == "unet-small":
        return UNet(in_channels, n_classes, (8, 16, 32, 64))
    if name in ("resnet18-deeplab", "resnet50-deeplab"):
        enc = ResNetEncoder(int(name[6:8]), in_channels)
        return ResNetDeepLab(enc, DeepLabV3PlusDecoder(enc.channels[1], enc.channels[4], n_classes))
    raise MedkitError(f"model {name!r} is not known; choose one of {', '.join(MODELS)}")

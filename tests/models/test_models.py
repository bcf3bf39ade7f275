from __future__ import annotations

import pytest
import torch

from medkit.errors import MedkitError
from medkit.models import build_model
from medkit.models.decoders import DeepLabV3PlusDecoder
from medkit.models.heads import segmentation_head
from medkit.models.resnet import ResNetEncoder
from medkit.models.unet import UNet

SHAPES = [  # (model, n_classes, input shape, output shape)
    ("unet", 4, (2, 1, 64, 64), (2, 4, 64, 64)),
    ("unet", 3, (1, 1, 128, 96), (1, 3, 128, 96)),
    ("unet-small", 4, (2, 1, 32, 32), (2, 4, 32, 32)),
    ("resnet18-deeplab", 4, (2, 1, 64, 64), (2, 4, 64, 64)),
    ("resnet50-deeplab", 2, (1, 1, 64, 64), (1, 2, 64, 64)),
]


@pytest.mark.parametrize("name,classes,shape,out", SHAPES)
def test_output_shapes(name, classes, shape, out):
    net = build_model(name, classes).eval()
    assert net(torch.zeros(shape)).shape == out


def test_unet_exposes_every_map():
    f = UNet(1, 4, (8, 16, 32, 64)).features(torch.zeros(2, 1, 64, 64))
    expect = {"enc0": (2, 8, 32, 32), "enc1": (2, 16, 16, 16), "enc2": (2, 32, 8, 8), "enc3": (2, 64, 4, 4),
              "dec2": (2, 32, 8, 8), "dec1": (2, 16, 16, 16), "dec0": (2, 8, 32, 32), "out": (2, 8, 64, 64)}
    assert {k: tuple(v.shape) for k, v in f.items()} == expect


@pytest.mark.parametrize("depth,channels", [(18, [64, 64, 128, 256, 512]), (50, [64, 256, 512, 1024, 2048])])
def test_resnet_maps(depth, channels):
    feats = ResNetEncoder(depth)(torch.zeros(1, 1, 64, 64))
    assert [f.shape[1] for f in feats] == channels
    assert [f.shape[-1] for f in feats] == [32, 16, 8, 4, 2]


def test_deeplab_decoder_and_head():
    dec = DeepLabV3PlusDecoder(64, 512, 4)
    assert dec(torch.zeros(2, 64, 16, 16), torch.zeros(2, 512, 2, 2)).shape == (2, 4, 16, 16)
    assert segmentation_head(16, 4)(torch.zeros(1, 16, 8, 8)).shape == (1, 4, 8, 8)


def test_unknown_model_is_named():
    with pytest.raises(MedkitError, match="'vit' is not known"):
        build_model("vit", 4)

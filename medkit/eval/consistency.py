"""IDEAL's fine-tuning: a shared (pretrained) encoder, two decoders of different design, and
cross-consistency on unlabelled slices (Basak et al., ICASSP 2023).

Decoder A is the U-Net's own (transposed-conv upsampling); decoder B upsamples bilinearly and
then convolves. On a labelled batch both are trained with cross-entropy against the mask; on an
unlabelled batch each decoder's hard prediction (stop-gradient) supervises the other
(:func:`medkit.losses.consistency.cross_consistency`). At test time the two softmax outputs are
averaged.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from medkit.data.augment import AugmentConfig, augment_segmentation, intensity
from medkit.data.slices import SliceSet
from medkit.eval.predict import mean_dice
from medkit.losses.consistency import cross_consistency
from medkit.models.heads import segmentation_head
from medkit.models.unet import UNet, conv_block
from medkit.train import TrainConfig, pick_device, train_loop


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
        self.unet = UNet(1, n_classes, net.channels)
        self.unet.load_state_dict(net.state_dict(), strict=False)  # encoder (+ decoder A) weights
        self.decoder_b = BilinearDecoder(net.channels, n_classes)

    def both(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        enc = self.unet.encode(x)
        a = self.unet.head(self.unet.decode(enc)[-1])  # (B, K, H, W)
        return a, self.decoder_b(enc, x.shape[-2:])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.both(x)
        return torch.log(0.5 * (a.softmax(1) + b.softmax(1)) + 1e-8)


def fit_cross_consistency(model: TwoDecoderNet, train: SliceSet, unlabelled: SliceSet, cfg: TrainConfig,
                          run_dir: str | Path, val: SliceSet | None = None, weight: float = 1.0,
                          augment: AugmentConfig = AugmentConfig(), progress: bool = True) -> dict:
    """Train with L = L_sup(labelled batch) + weight * L_cons(unlabelled batch).

    Args:
        model: the two-decoder network.
        train: labelled slices; unlabelled: pretraining-pool slices (no labels).
        weight: of the consistency term (ramped up linearly over the first 20 % of the steps,
            while the decoders' predictions are still poor).
    """
    device = pick_device(cfg.device)
    fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format

    def step(g: torch.Generator, i: int) -> dict[str, torch.Tensor]:
        idx = torch.randint(len(train), (cfg.batch_size,), generator=g)
        x, y = augment_segmentation(train.images[idx], train.labels[idx], augment, g)
        a, b = model.both(x.to(device, memory_format=fmt))
        sup = cross_consistency(a, b, y.to(device))
        uidx = torch.randint(len(unlabelled), (cfg.batch_size,), generator=g)
        u = intensity(unlabelled.images[uidx], augment, g)
        ua, ub = model.both(u.to(device, memory_format=fmt))
        cons = cross_consistency(ua, ub)
        ramp = min(1.0, i / max(1.0, 0.2 * cfg.steps))
        return {"loss": sup + weight * ramp * cons, "supervised": sup, "consistency": cons}

    return train_loop(model, step, cfg, Path(run_dir),
                      validate=(lambda: mean_dice(model, val, device)) if val is not None and cfg.val_every else None,
                      progress=progress, desc=Path(run_dir).name)

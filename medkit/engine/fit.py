"""Supervised training loops on labelled slices, built on :func:`~medkit.engine.loop.train_loop`.

* :func:`fit_segmentation`: Dice + cross-entropy (MONAI ``DiceCELoss``) on labelled batches,
  for training from scratch, fine-tuning and linear probes;
* :func:`fit_cross_consistency`: IDEAL's fine-tuning (Basak et al., ICASSP 2023), the two
  decoders of :class:`~medkit.models.two_decoder.TwoDecoderNet` supervised on labelled batches and
  teaching each other on unlabelled ones.

Both select the kept weights by validation Dice (:func:`medkit.eval.predict.mean_dice`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from monai.losses import DiceCELoss
from torch import nn

from medkit.data.augment import AugmentConfig, augment_segmentation, intensity
from medkit.data.slices import SliceSet
from medkit.engine.config import TrainConfig
from medkit.engine.device import memory_format, pick_device
from medkit.engine.loop import Hooks, train_loop
from medkit.errors import MedkitError
from medkit.eval.predict import mean_dice
from medkit.losses.consistency import cross_consistency
from medkit.models.two_decoder import TwoDecoderNet


@dataclass(frozen=True)
class ConsistencyConfig:
    """The unlabelled side of :func:`fit_cross_consistency` (IDEAL's fine-tuning).

    Attributes:
        weight: of the consistency term (ramped up linearly over the first 20 % of the steps,
            while the decoders' predictions are still poor).
        threshold: the confidence a pseudo-label needs to supervise the other decoder.
        augment: augmentation of the labelled batches (the unlabelled ones get its intensity part).
    """

    weight: float = 1.0
    threshold: float = 0.95
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def __post_init__(self) -> None:
        if not self.weight >= 0:
            raise MedkitError(f"weight must be 0 or more, got {self.weight}")
        if not 0 <= self.threshold <= 1:
            raise MedkitError(f"threshold must be in [0, 1], got {self.threshold}")


def _hooks(model: nn.Module, val: SliceSet | None, cfg: TrainConfig, device: torch.device) -> Hooks:
    """The validation score of model selection, if there is a validation."""
    return Hooks(validate=(lambda: mean_dice(model, val, device)) if val is not None and cfg.val_every else None)


def _desc(run_dir: str | Path) -> str:
    """What a progress bar says is running: ``eval_random_linear/k1_c2``."""
    return f"{Path(run_dir).parent.name}/{Path(run_dir).name}"


def fit_segmentation(model: nn.Module, train: SliceSet, cfg: TrainConfig, run_dir: str | Path,
                     val: SliceSet | None = None, augment: AugmentConfig | None = AugmentConfig(),
                     params: list[nn.Parameter] | None = None, progress: bool = True) -> dict:
    """Supervised segmentation training (training from scratch, fine-tuning, linear probes).

    Loss: Dice + cross-entropy (MONAI ``DiceCELoss``, softmax, background included), on
    batches drawn with replacement from ``train`` and augmented on the device
    (:func:`medkit.data.augment.augment_segmentation`).

    Args:
        model: (B, 1, h, w) -> logits (B, C, h, w).
        train: labelled slices.
        cfg: schedule.
        run_dir: run folder of this training.
        val: labelled validation slices; the best mean 3D Dice selects the kept weights.
        augment: augmentation strength, or None for none.
        params: only these are trained (e.g. the head of a linear probe).
        progress: show a progress bar.

    Returns:
        the summary of :func:`train_loop`.
    """
    if train.labels is None:
        raise MedkitError("fit_segmentation needs labelled slices")
    if len(train) == 0:
        raise MedkitError("no labelled training slices")
    device = pick_device(cfg.device)
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True)
    images, labels = train.images, train.labels

    def step(gen: torch.Generator, _: int) -> dict[str, torch.Tensor]:
        idx = torch.randint(len(images), (cfg.batch_size,), generator=gen)
        x, y = images[idx], labels[idx]  # (B, 1, h, w), (B, h, w)
        if augment is not None:
            x, y = augment_segmentation(x, y, augment, gen)
        x = x.to(device, non_blocking=True, memory_format=memory_format(cfg.channels_last))
        y = y.to(device, non_blocking=True)
        return {"loss": loss_fn(model(x), y[:, None])}

    return train_loop(model, step, cfg, Path(run_dir), params=params, hooks=_hooks(model, val, cfg, device),
                      progress=progress, desc=_desc(run_dir))


def fit_cross_consistency(model: TwoDecoderNet, train: SliceSet, unlabelled: SliceSet, cfg: TrainConfig,
                          run_dir: str | Path, val: SliceSet | None = None,
                          consistency: ConsistencyConfig = ConsistencyConfig(), progress: bool = True) -> dict:
    """Train with L = L_sup(labelled batch) + weight * L_cons(unlabelled batch).

    L_sup is the kit's fine-tuning loss (Dice + cross-entropy, as :func:`fit_segmentation`) on
    each decoder, where IDEAL uses cross-entropy: on ACDC at k = 1 (patient 002, 64 px, 500 steps,
    random initialisation, no consistency term) cross-entropy reached 0.534 mean Dice, Dice + CE
    0.578. L_cons is :func:`~medkit.losses.consistency.cross_consistency` with a confidence
    ``threshold``: on the same run, the unmasked term (the paper's) brought cross-entropy training
    down to 0.192 (both decoders learn the background pseudo-labels of each other), masked at
    0.95 it gave 0.504 (Dice + CE: 0.541).

    Args:
        model: the two-decoder network.
        train: labelled slices; unlabelled: pretraining-pool slices (no labels).
        cfg: schedule; run_dir: run folder of this training.
        val: labelled validation slices; the best mean 3D Dice selects the kept weights.
        consistency: weight and confidence threshold of the consistency term, augmentation
            (:class:`ConsistencyConfig`; defaults 1.0, 0.95, ``AugmentConfig()``).
        progress: show a progress bar.

    Returns:
        the summary of :func:`train_loop`.
    """
    device = pick_device(cfg.device)
    fmt = memory_format(cfg.channels_last)
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True)
    weight, threshold, augment = consistency.weight, consistency.threshold, consistency.augment

    def step(g: torch.Generator, i: int) -> dict[str, torch.Tensor]:
        idx = torch.randint(len(train), (cfg.batch_size,), generator=g)
        x, y = augment_segmentation(train.images[idx], train.labels[idx], augment, g)
        a, b = model.both(x.to(device, memory_format=fmt))  # (B, K, H, W) each
        y = y.to(device)[:, None]  # (B, 1, H, W)
        sup = loss_fn(a, y) + loss_fn(b, y)
        uidx = torch.randint(len(unlabelled), (cfg.batch_size,), generator=g)
        u = intensity(unlabelled.images[uidx], augment, g)
        ua, ub = model.both(u.to(device, memory_format=fmt))
        cons = cross_consistency(ua, ub, threshold=threshold)
        ramp = min(1.0, i / max(1.0, 0.2 * cfg.steps))
        return {"loss": sup + weight * ramp * cons, "supervised": sup, "consistency": cons}

    return train_loop(model, step, cfg, Path(run_dir), hooks=_hooks(model, val, cfg, device),
                      progress=progress, desc=_desc(run_dir))

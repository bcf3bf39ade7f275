"""What every method shares: the batch it gets, its config check, and the U-Net it pretrains.

A method is an ``nn.Module`` with:

* ``net``: the U-Net (no segmentation head) whose weights are transferred to segmentation;
* ``views``: the two :class:`~medkit.data.views.ViewConfig` it augments with;
* ``loss(batch, g, step) -> {"loss": ..., other terms}`` (also its ``forward``, for DDP);
* ``gather_distributed``: whether its losses see every process's batch (explicit, never implied
  by a process group existing);
* ``after_step()``: e.g. the momentum update;
* ``embed(x) -> {"h": (B, D), "z": (B, D')}``: backbone and projector embeddings for the
  collapse diagnostics.
"""
from __future__ import annotations

import typing
from dataclasses import fields

import torch
from torch import nn

from medkit.data.batches import Batch
from medkit.data.views import ViewConfig
from medkit.errors import MedkitError
from medkit.models.unet import UNet


def make_config(cls: type, overrides: dict | None = None):
    """Build a frozen config dataclass; unknown keys fail with their names, and string values
    (from ``--set key=value``) are converted to the field's type."""
    overrides = dict(overrides or {})
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(overrides) - set(known))
    if unknown:
        raise MedkitError(f"unknown option(s) {', '.join(unknown)} for {cls.__name__}; "
                          f"known: {', '.join(sorted(known))}")
    hints = typing.get_type_hints(cls)
    out = {}
    for k, v in overrides.items():
        out[k] = _convert(k, v, hints[k]) if isinstance(v, str) else v
    try:
        cfg = cls(**out)
        check_ranges(cfg)
        return cfg
    except (TypeError, ValueError) as e:
        raise MedkitError(f"{cls.__name__}: {e}") from None


POSITIVE = ("channels", "proj_hidden", "proj_dim", "proj_dims", "queue", "temperature", "pixels", "n_regions",
            "region_px", "region_fraction", "n_neg", "global_steps", "whitening_groups")
NON_NEGATIVE = ("local_weight", "barlow_lambda", "chunk", "rotate", "region_spacing")


def check_ranges(cfg) -> None:
    """The ranges every method config shares, checked when it is built: sizes, counts and
    temperatures above 0 (a temperature of 0 divides by zero), weights and options at 0 or above,
    and at least two U-Net levels. Raises ValueError naming the field."""
    for name in POSITIVE + NON_NEGATIVE:
        if not hasattr(cfg, name):
            continue
        value = getattr(cfg, name)
        values = value if isinstance(value, tuple) else (value,)
        if any(not isinstance(v, (int, float)) or isinstance(v, bool) for v in values):
            raise ValueError(f"{name} must be a number (or numbers), got {value!r}")
        if any(v <= 0 if name in POSITIVE else v < 0 for v in values):
            raise ValueError(f"{name} must be {'above 0' if name in POSITIVE else '0 or more'}, got {value!r}")
    if hasattr(cfg, "channels") and len(cfg.channels) < 2:
        raise ValueError(f"channels needs at least 2 U-Net levels, got {cfg.channels!r}")


def _convert(key: str, text: str, typ) -> object:
    origin = typing.get_origin(typ)
    try:
        if typ is bool:
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if typ in (int, float, str):
            return typ(text)
        if origin is tuple:
            inner = typing.get_args(typ)[0]
            return tuple(inner(t) for t in text.strip("()").split(",") if t.strip())
    except ValueError:
        raise MedkitError(f"option {key}={text!r}: expected {getattr(typ, '__name__', typ)}") from None
    return text


def unet(channels: tuple[int, ...], out_width: int = 0) -> UNet:
    """The backbone every method pretrains: a U-Net without segmentation head."""
    return UNet(1, 0, channels, out_width)


def same_views(v: ViewConfig) -> tuple[ViewConfig, ViewConfig]:
    """The views of a method that augments both alike: ``(v, v)``."""
    return v, v


def pooled(fmap: torch.Tensor) -> torch.Tensor:
    """Global average of a feature map, (B, C, h, w) -> (B, C); of the U-Net's bottleneck map
    ``enc[-1]`` it is the backbone embedding h that every method's diagnostics read."""
    return fmap.mean((2, 3))


class Method(nn.Module):
    """Small shared behaviour; methods override ``loss`` and, where needed, the rest.

    Args:
        gather_distributed: the losses (and whitening) contrast against, or estimate statistics
            on, the global batch of every process (set by the pretraining workflow when it runs
            under ``torchrun`` with several processes); off, each process uses its own batch.
    """

    name = "method"
    views: tuple[ViewConfig, ViewConfig]

    def __init__(self, gather_distributed: bool = False) -> None:
        super().__init__()
        self.gather_distributed = gather_distributed

    def structured_batches(self) -> bool:
        """True when batches must hold m volumes x one slice per partition (Chaitanya's G^D)."""
        return False

    def chance(self, batch_size: int, image_size: int) -> dict[str, float]:
        """The chance value of each contrastive loss term: ln(number of candidates per anchor), the
        InfoNCE of embeddings that carry no information. A term far below it early in training
        solves a trivial task (the pretraining workflow warns). Empty where none applies."""
        return {}

    def check_batch(self, batch_size: int) -> None:
        """Raise :class:`MedkitError` when the method cannot train with this batch size (every
        method needs two slices at least: negatives, and batch statistics of its normalisation)."""
        if batch_size < 2:
            raise MedkitError(f"batch_size {batch_size} is too small: a contrastive step needs at least 2 slices "
                              "per process")

    def after_step(self) -> None:
        """Called after every optimiser step (momentum updates)."""

    def loss(self, batch: Batch, g: torch.Generator, step: int) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def forward(self, batch: Batch, g: torch.Generator, step: int) -> dict[str, torch.Tensor]:
        """The loss terms: ``forward`` is what DistributedDataParallel wraps."""
        return self.loss(batch, g, step)

    def h(self, x: torch.Tensor) -> torch.Tensor:
        """Backbone embedding h: global average of the U-Net's bottleneck map, (B, C)."""
        return pooled(self.net.encode(x)[-1])

    @torch.no_grad()
    def embed(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """h, and z = projector(h) for methods whose projector acts on h (dense methods override)."""
        h = self.h(x)
        return {"h": h, "z": self.projector(h)} if hasattr(self, "projector") else {"h": h}

"""The schedule and optimisation settings of one training run."""
from __future__ import annotations

import math
from dataclasses import dataclass

from medkit.engine.device import check_device_name
from medkit.errors import MedkitError


@dataclass(frozen=True)
class TrainConfig:
    """Schedule and optimisation of one training run.

    Attributes:
        steps: optimisation steps (CPU demo: a few hundred; ACDC on a CPU: 3000; GPU: 10,000+).
        batch_size: slices per step.
        lr: AdamW learning rate (Chaitanya et al.: 1e-3).
        head_lr: learning rate of the segmentation head's parameters (those under a module named
            ``head``), None for ``lr`` (the Pix2Rep authors fine-tune with 5e-5 and a head at 1e-2).
        weight_decay: AdamW weight decay.
        schedule: ``"cosine"`` decay to zero or ``"constant"``.
        warmup: steps of linear warm-up from lr / (warmup + 1) before the schedule (0: none).
        val_every: steps between validations (0: none; the last weights are kept).
        ckpt_every: steps between checkpoints.
        log_every: steps between history entries.
        seed: seeds the model initialisation, batch sampling and augmentation.
        device: ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``; only the
            spelling is checked here, whether the device exists when a run picks it.
        amp: mixed precision (float16 autocast) when on CUDA; ignored on the CPU.
        channels_last: NHWC memory format (about 25 % faster convolutions on a CPU here).
        compile: ``""`` (eager) or a ``torch.compile`` backend (``"inductor"`` on a GPU) applied
            to every conv-norm-activation block; if compilation is unavailable the run warns
            and stays eager.
    """

    steps: int = 3000
    batch_size: int = 16
    lr: float = 1e-3
    head_lr: float | None = None
    weight_decay: float = 1e-4
    schedule: str = "cosine"
    warmup: int = 0
    val_every: int = 250
    ckpt_every: int = 250
    log_every: int = 25
    seed: int = 0
    device: str = "auto"
    amp: bool = True
    channels_last: bool = True
    compile: str = ""

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "ckpt_every", "log_every"):
            if getattr(self, name) < 1:
                raise MedkitError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.val_every < 0:
            raise MedkitError(f"val_every must be 0 (never) or positive, got {self.val_every}")
        for name in ("lr", "head_lr"):
            value = getattr(self, name)
            if value is not None and (value <= 0 or not math.isfinite(value)):
                raise MedkitError(f"{name} must be a positive number, got {value}")
        if not 0 <= self.warmup < self.steps:
            raise MedkitError(f"warmup must be 0 or more and fewer than the {self.steps} steps, got {self.warmup}")
        if self.schedule not in ("cosine", "constant"):
            raise MedkitError(f"schedule must be 'cosine' or 'constant', got {self.schedule!r}")
        check_device_name(self.device)  # spelling only: building a config probes no hardware

"""One training loop for supervised training, fine-tuning and (later) pretraining.

:func:`train_loop` owns what every schedule needs: device, mixed precision on CUDA, seeds,
a tqdm progress bar, history, atomic checkpoints and exact resumption. A run killed at any
moment resumes from its last checkpoint; because the checkpoint holds the model, optimizer,
scheduler, gradient scaler, random generator and history, the resumed run ends with the same
weights as an uninterrupted one on the CPU (tests/test_train.py checks this).

:func:`fit_segmentation` is supervised segmentation on a labelled :class:`SliceSet`
(Dice + cross-entropy, MONAI ``DiceCELoss``), with model selection on validation Dice.
"""
from __future__ import annotations

import copy
import math
import random
import time
import warnings
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from monai.losses import DiceCELoss
from torch import nn
from tqdm.auto import tqdm

from medkit import distributed
from medkit.data.augment import AugmentConfig, augment_segmentation
from medkit.data.slices import SliceSet
from medkit.errors import MedkitError
from medkit.eval.predict import mean_dice
from medkit.runs import load_checkpoint, save_checkpoint, write_json


@dataclass(frozen=True)
class TrainConfig:
    """Schedule and optimisation of one training run.

    Attributes:
        steps: optimisation steps (CPU demo: a few hundred; ACDC on a CPU: 3000; GPU: 10,000+).
        batch_size: slices per step.
        lr: Adam learning rate (Chaitanya et al.: 1e-3).
        weight_decay: AdamW weight decay.
        schedule: ``"cosine"`` decay to zero or ``"constant"``.
        val_every: steps between validations (0: none; the last weights are kept).
        ckpt_every: steps between checkpoints.
        log_every: steps between history entries.
        seed: seeds the model initialisation, batch sampling and augmentation.
        device: ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.
        amp: mixed precision (float16 autocast) when on CUDA; ignored on the CPU.
        channels_last: NHWC memory format (about 25 % faster convolutions on a CPU here).
        compile: ``""`` (eager) or a ``torch.compile`` backend (``"inductor"`` on a GPU) applied
            to every conv-norm-activation block; if compilation is unavailable the run warns
            and stays eager.
    """

    steps: int = 3000
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 1e-4
    schedule: str = "cosine"
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
        if self.lr <= 0 or not math.isfinite(self.lr):
            raise MedkitError(f"lr must be a positive number, got {self.lr}")
        if self.schedule not in ("cosine", "constant"):
            raise MedkitError(f"schedule must be 'cosine' or 'constant', got {self.schedule!r}")
        pick_device(self.device)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        """Build from a dict; an unknown key fails with its name."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise MedkitError(f"unknown training option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**d)


def pick_device(name: str = "auto") -> torch.device:
    """``"auto"`` -> CUDA if available else CPU; an unavailable device is a clear error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise MedkitError(f"--device {name}: CUDA is not available on this machine (use auto or cpu)")
    if not (name == "cpu" or name.startswith("cuda")):
        raise MedkitError(f"--device must be auto, cpu or cuda[:N], got {name!r}")
    return torch.device(name)


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return a CPU generator for sampling and augmentation."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def cosine_lambda(steps: int) -> Callable[[int], float]:
    return lambda s: 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps))


StepFn = Callable[[torch.Generator, int], dict[str, torch.Tensor]]


def make_optimizer(params: list[nn.Parameter], lr: float, weight_decay: float = 1e-4) -> torch.optim.AdamW:
    """AdamW, fused (one kernel for all parameters) where this torch supports it on their device."""
    try:
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=True)
    except (RuntimeError, TypeError):  # fused unsupported for this device or dtype
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)


def compile_blocks(model: nn.Module, backend: str) -> int:
    """``torch.compile`` every conv-norm-activation block of ``model`` in place (state-dict keys
    unchanged, so checkpoints stay interchangeable with eager runs); returns how many. Blocks, not
    the whole step: the methods' view sampling and losses run eagerly around them."""
    from monai.networks.blocks import Convolution
    blocks = [m for m in model.modules() if isinstance(m, Convolution)]
    if not blocks:
        return 0
    probe = copy.deepcopy(blocks[0])
    x = torch.randn(2, probe.in_channels, 16, 16, device=next(probe.parameters()).device)
    try:  # compilation fails lazily, at the first call: try it once on a copy
        torch.compile(probe, backend=backend)(x).sum().backward()
    except Exception as e:  # no C++ compiler, unsupported platform or backend: stay eager
        warnings.warn(f"torch.compile(backend={backend!r}) unavailable ({type(e).__name__}: "
                      f"{str(e).splitlines()[0] if str(e) else ''}); running eagerly")
        return 0
    for b in blocks:
        b.compile(backend=backend)
    return len(blocks)


def train_loop(model: nn.Module, step_fn: StepFn, cfg: TrainConfig, run_dir: Path,
               params: list[nn.Parameter] | None = None,
               validate: Callable[[], float] | None = None,
               monitor: Callable[[], dict[str, float]] | None = None,
               after_step: Callable[[], None] | None = None,
               stop_after: int | None = None, progress: bool = True,
               desc: str = "train") -> dict:
    """Run ``cfg.steps`` optimisation steps with checkpoints, resumption and history.

    Args:
        model: the module whose state is checkpointed (it holds everything trained).
        step_fn: ``step_fn(generator, step) -> {"loss": scalar tensor, other terms...}``; it
            samples its own batch with the generator and runs the forward pass (under autocast).
        cfg: the schedule.
        run_dir: where ``checkpoint.pt``, ``best.pt``, ``model.pt`` and ``history.json`` go.
        params: parameters to optimise (default: all of ``model``'s that require grad).
        validate: returns a score to maximise; the best weights are kept as ``model.pt``.
        monitor: returns measures (e.g. effective rank) recorded in the history every
            ``cfg.val_every`` steps.
        after_step: called after each optimiser step (e.g. a momentum update).
        stop_after: stop (as if killed) after this step; used by tests of resumption.
        progress: show a tqdm bar.

    Returns:
        a summary dict: steps, wall time, best validation score and step.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    device = pick_device(cfg.device)
    use_amp = cfg.amp and device.type == "cuda"
    model.to(device)
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    params = params if params is not None else [p for p in model.parameters() if p.requires_grad]
    opt = make_optimizer(params, cfg.lr, cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, cosine_lambda(cfg.steps) if cfg.schedule == "cosine" else (lambda s: 1.0))
    scaler = torch.amp.GradScaler(device.type, enabled=use_amp)
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    state = {"step": 0, "history": [], "best": -math.inf, "best_step": -1, "seconds": 0.0}
    ckpt = run_dir / "checkpoint.pt"
    if ckpt.exists():
        c = load_checkpoint(ckpt)
        model.load_state_dict(c["model"])
        opt.load_state_dict(c["optimizer"])
        sched.load_state_dict(c["scheduler"])
        scaler.load_state_dict(c["scaler"])
        gen.set_state(c["generator"])
        state = {k: c[k] for k in state}

    def save() -> None:
        save_checkpoint(ckpt, {"model": model.state_dict(), "optimizer": opt.state_dict(),
                               "scheduler": sched.state_dict(), "scaler": scaler.state_dict(),
                               "generator": gen.get_state(), **state})
        write_json(run_dir / "history.json", state["history"])

    t0 = time.perf_counter() - state["seconds"]
    main = distributed.is_main()  # under torchrun only the main process writes
    if cfg.compile:
        compile_blocks(model, cfg.compile)
    bar = tqdm(total=cfg.steps, initial=state["step"], desc=desc, disable=not (progress and main),
               leave=False, mininterval=2.0)
    model.train()
    while state["step"] < cfg.steps:
        with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
            terms = step_fn(gen, state["step"])
        loss = terms["loss"]
        if not torch.isfinite(loss):
            raise MedkitError(f"loss became {loss.item()} at step {state['step']}: lower --lr "
                              f"(now {cfg.lr}) or check the data for constant images")
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        sched.step()
        if after_step is not None:
            after_step()
        state["step"] += 1
        step = state["step"]
        bar.update(1)
        if step % cfg.log_every == 0 or step == cfg.steps:
            entry = {"step": step, "lr": sched.get_last_lr()[0]}
            entry.update({k: float(distributed.mean_over_processes(v.detach())) for k, v in terms.items()})
            state["history"].append(entry)
            bar.set_postfix(loss=f"{entry['loss']:.3f}")
        at_check = cfg.val_every and (step % cfg.val_every == 0 or step == cfg.steps)
        if monitor is not None and at_check and main:
            state["history"].append({"step": step, **monitor()})
            model.train()
        if validate is not None and at_check:
            score = float(validate())
            model.train()
            state["history"].append({"step": step, "val_dice": score})
            if score > state["best"]:
                state["best"], state["best_step"] = score, step
                save_checkpoint(run_dir / "best.pt", {"model": model.state_dict()})
        state["seconds"] = time.perf_counter() - t0
        if (step % cfg.ckpt_every == 0 or step == cfg.steps) and main:
            save()
        if stop_after is not None and step >= stop_after and step < cfg.steps:
            bar.close()
            return {"steps": step, "interrupted": True}
    bar.close()
    best = run_dir / "best.pt"
    final = load_checkpoint(best)["model"] if best.exists() else model.state_dict()
    if main:
        save_checkpoint(run_dir / "model.pt", {"model": final})  # its presence marks a finished run
    model.load_state_dict(final)
    return {"steps": state["step"], "seconds": state["seconds"],
            "best_val": state["best"] if best.exists() else None,
            "best_step": state["best_step"] if best.exists() else None}


def fit_segmentation(model: nn.Module, train: SliceSet, cfg: TrainConfig, run_dir: str | Path,
                     val: SliceSet | None = None, augment: AugmentConfig | None = AugmentConfig(),
                     params: list[nn.Parameter] | None = None, stop_after: int | None = None,
                     progress: bool = True) -> dict:
    """Supervised segmentation training (training from scratch, fine-tuning, linear probes).

    Loss: Dice + cross-entropy (MONAI ``DiceCELoss``, softmax, background included), on
    batches drawn with replacement from ``train`` and augmented on the device
    (:func:`~medkit.data.augment.augment_segmentation`).

    Args:
        model: (B, 1, h, w) -> logits (B, C, h, w).
        train: labelled slices.
        cfg: schedule.
        run_dir: run folder of this training.
        val: labelled validation slices; the best mean 3D Dice selects the kept weights.
        augment: augmentation strength, or None for none.
        params: only these are trained (e.g. the head of a linear probe).
        stop_after: simulate a kill after this step (tests).

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
        fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
        x = x.to(device, non_blocking=True, memory_format=fmt)
        y = y.to(device, non_blocking=True)
        return {"loss": loss_fn(model(x), y[:, None])}

    return train_loop(model, step, cfg, Path(run_dir), params=params,
                      validate=(lambda: mean_dice(model, val, device)) if val is not None and cfg.val_every else None,
                      stop_after=stop_after, progress=progress, desc=Path(run_dir).name)

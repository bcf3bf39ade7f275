"""One training loop for supervised training, fine-tuning and pretraining.

:func:`train_loop` owns what every schedule needs: device, mixed precision on CUDA, a tqdm
progress bar, history, atomic checkpoints and exact resumption. A run killed at any moment
resumes from its last checkpoint; because the checkpoint holds the model, optimizer, scheduler,
gradient scaler, random generator and history, the resumed run ends with the same weights as an
uninterrupted one on the CPU (``tests/engine/test_loop.py`` checks this).

The learning rate follows torch's schedulers (:func:`make_scheduler`): an optional linear warm-up
of w steps, then cosine annealing to zero, lr_s = lr / 2 (1 + cos(pi (s - w) / (steps - w))), or a
constant rate; a segmentation head may have its own rate (:func:`param_groups`).
"""
from __future__ import annotations

import copy
import math
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn
from tqdm.auto import tqdm

from medkit.comm import mean_over_processes
from medkit.engine.checkpoints import load_checkpoint, load_weights, save_checkpoint
from medkit.engine.config import TrainConfig
from medkit.engine.device import pick_device
from medkit.engine.distributed import is_main
from medkit.engine.runs import remove_stale_temporaries, write_json
from medkit.errors import MedkitError, one_line

StepFn = Callable[[torch.Generator, int], dict[str, torch.Tensor]]


def make_scheduler(opt: torch.optim.Optimizer, cfg: TrainConfig) -> torch.optim.lr_scheduler.LRScheduler:
    """The learning-rate schedule of ``cfg``, stepped once per optimisation step: ``cfg.warmup``
    steps of linear warm-up (``LinearLR``), then cosine annealing to zero over the remaining steps
    (``CosineAnnealingLR``) or a constant rate (``ConstantLR``), chained by ``SequentialLR``."""
    sched = torch.optim.lr_scheduler
    rest = cfg.steps - cfg.warmup
    main = (sched.CosineAnnealingLR(opt, T_max=rest, eta_min=0.0) if cfg.schedule == "cosine"
            else sched.ConstantLR(opt, factor=1.0, total_iters=0))
    if cfg.warmup == 0:
        return main
    warm = sched.LinearLR(opt, start_factor=1.0 / (cfg.warmup + 1), end_factor=1.0, total_iters=cfg.warmup)
    return sched.SequentialLR(opt, [warm, main], milestones=[cfg.warmup])


def param_groups(model: nn.Module, params: list[nn.Parameter], cfg: TrainConfig) -> list[dict]:
    """``params`` as optimiser groups: with ``cfg.head_lr``, the parameters under a module named
    ``head`` (a segmentation head) get that rate and the others ``cfg.lr``."""
    if cfg.head_lr is None:
        return [{"params": params}]
    wanted = {id(p) for p in params}
    head = [p for n, p in model.named_parameters() if id(p) in wanted and "head" in n.split(".")]
    if not head:
        raise MedkitError("head_lr is set but the model has no trainable module named 'head'")
    head_ids = {id(p) for p in head}
    rest = [p for p in params if id(p) not in head_ids]
    return ([{"params": rest}] if rest else []) + [{"params": head, "lr": cfg.head_lr}]


def make_optimizer(params: list[nn.Parameter] | list[dict], lr: float, weight_decay: float = 1e-4) -> torch.optim.AdamW:
    """AdamW over parameters or parameter groups, fused (one kernel for all parameters) where this
    torch supports it on their device."""
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


@dataclass(frozen=True)
class Hooks:
    """What a training calls besides its step: validate() -> score to maximise (best weights kept),
    monitor() -> measures recorded every val_every steps, after_step() after each optimiser step
    (momentum updates)."""

    validate: Callable[[], float] | None = None
    monitor: Callable[[], dict[str, float]] | None = None
    after_step: Callable[[], None] | None = None


@dataclass(frozen=True)
class _Optimisation:
    """Everything a step changes besides the model, all of it checkpointed (the objects are
    mutable; the record of which ones a run uses is not)."""

    device: torch.device
    amp: bool  # float16 autocast and gradient scaling (CUDA only)
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    gen: torch.Generator  # batch sampling and augmentation


def _prepare(model: nn.Module, cfg: TrainConfig, params: list[nn.Parameter] | None) -> _Optimisation:
    """Move ``model`` to ``cfg``'s device and build its optimiser, schedule, scaler and generator."""
    device = pick_device(cfg.device)
    use_amp = cfg.amp and device.type == "cuda"
    model.to(device)
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    params = params if params is not None else [p for p in model.parameters() if p.requires_grad]
    opt = make_optimizer(param_groups(model, params, cfg), cfg.lr, cfg.weight_decay)
    return _Optimisation(device, use_amp, opt, make_scheduler(opt, cfg),
                         torch.amp.GradScaler(device.type, enabled=use_amp),
                         torch.Generator().manual_seed(cfg.seed + 1))


def _restore(model: nn.Module, o: _Optimisation, run_dir: Path) -> dict:
    """The loop's state (step, history, best score and step, seconds): a fresh one, or that of
    ``run_dir/checkpoint.pt`` with model and optimisation restored from it (exact resumption)."""
    state = {"step": 0, "history": [], "best": -math.inf, "best_step": -1, "seconds": 0.0}
    ckpt = run_dir / "checkpoint.pt"
    if is_main():
        remove_stale_temporaries(run_dir)  # of checkpoint writes killed in mid-flight
    if not ckpt.exists():
        return state
    c = load_checkpoint(ckpt, needs=("model", "optimizer", "scheduler", "scaler", "generator", *state))
    load_weights(model, ckpt, "the network being trained")
    try:
        o.opt.load_state_dict(c["optimizer"])
        o.sched.load_state_dict(c["scheduler"])
        o.scaler.load_state_dict(c["scaler"])
        o.gen.set_state(c["generator"])
    except (ValueError, KeyError, RuntimeError, TypeError) as e:
        raise MedkitError(f"{ckpt}: its optimiser state does not fit this run ({one_line(e, 120)})") from None
    return {k: c[k] for k in state}


def _save(model: nn.Module, o: _Optimisation, state: dict, run_dir: Path) -> None:
    """Write ``checkpoint.pt`` (atomically) and ``history.json``."""
    save_checkpoint(run_dir / "checkpoint.pt", {
        "model": model.state_dict(), "optimizer": o.opt.state_dict(), "scheduler": o.sched.state_dict(),
        "scaler": o.scaler.state_dict(), "generator": o.gen.get_state(), **state})
    write_json(run_dir / "history.json", state["history"])


def _optimise(model: nn.Module, step_fn: StepFn, o: _Optimisation, step: int, cfg: TrainConfig) -> dict:
    """One optimisation step (forward under autocast on CUDA, scaled backward, optimiser and
    schedule steps); returns the step's terms. A non-finite loss is an error."""
    with torch.autocast(o.device.type, dtype=torch.float16, enabled=o.amp):
        terms = step_fn(o.gen, step)
    loss = terms["loss"]
    if not torch.isfinite(loss):
        raise MedkitError(f"loss became {loss.item()} at step {step}: lower lr={cfg.lr / 10:g} (now {cfg.lr:g}) "
                          "or check the data for constant images")
    o.opt.zero_grad(set_to_none=True)
    o.scaler.scale(loss).backward()
    o.scaler.step(o.opt)
    o.scaler.update()
    o.sched.step()
    return terms


def _log(terms: dict, o: _Optimisation, state: dict, cfg: TrainConfig, bar: tqdm) -> None:
    """Every ``cfg.log_every`` steps and at the last: learning rate and terms (averaged over the
    processes) into the history."""
    step = state["step"]
    if step % cfg.log_every == 0 or step == cfg.steps:
        entry = {"step": step, "lr": o.sched.get_last_lr()[0]}
        entry.update({k: float(mean_over_processes(v.detach())) for k, v in terms.items()})
        state["history"].append(entry)
        bar.set_postfix(loss=f"{entry['loss']:.3f}")


def _check(model: nn.Module, hooks: Hooks, state: dict, cfg: TrainConfig, run_dir: Path) -> None:
    """Every ``cfg.val_every`` steps and at the last: the monitor's measures (main process) and the
    validation score into the history; a new best score writes ``best.pt``."""
    step = state["step"]
    if not (cfg.val_every and (step % cfg.val_every == 0 or step == cfg.steps)):
        return
    if hooks.monitor is not None and is_main():
        state["history"].append({"step": step, **hooks.monitor()})
        model.train()
    if hooks.validate is not None:
        score = float(hooks.validate())
        model.train()
        state["history"].append({"step": step, "val_dice": score})
        if score > state["best"]:
            state["best"], state["best_step"] = score, step
            save_checkpoint(run_dir / "best.pt", {"model": model.state_dict()})


def _finish(model: nn.Module, state: dict, run_dir: Path) -> dict:
    """Load the kept weights (``best.pt`` if validated, else the last) into ``model``, write them as
    ``model.pt`` (whose presence marks a finished run) and return the summary."""
    best = run_dir / "best.pt"
    final = load_checkpoint(best)["model"] if best.exists() else model.state_dict()
    if is_main():
        save_checkpoint(run_dir / "model.pt", {"model": final})
    model.load_state_dict(final)
    return {"steps": state["step"], "seconds": state["seconds"],
            "best_val": state["best"] if best.exists() else None,
            "best_step": state["best_step"] if best.exists() else None}


def train_loop(model: nn.Module, step_fn: StepFn, cfg: TrainConfig, run_dir: Path,
               params: list[nn.Parameter] | None = None, hooks: Hooks | None = None,
               progress: bool = True, desc: str = "train") -> dict:
    """Run ``cfg.steps`` optimisation steps with checkpoints, resumption and history.

    A run stopped at any point (killed, or an exception from ``step_fn``) resumes from its last
    checkpoint when called again with the same ``run_dir``.

    Args:
        model: the module whose state is checkpointed (it holds everything trained).
        step_fn: ``step_fn(generator, step) -> {"loss": scalar tensor, other terms...}``; it
            samples its own batch with the generator and runs the forward pass (under autocast).
        cfg: the schedule.
        run_dir: where ``checkpoint.pt``, ``best.pt``, ``model.pt`` and ``history.json`` go.
        params: parameters to optimise (default: all of ``model``'s that require grad).
        hooks: validation (the best weights are kept as ``model.pt``), monitor and after-step
            calls (:class:`Hooks`); default none.
        progress: show a tqdm bar.
        desc: the bar's label.

    Returns:
        a summary dict: steps, wall time, best validation score and step.

    Example:
        >>> summary = train_loop(model, step, TrainConfig(steps=100), run, hooks=Hooks(validate=score))
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    hooks = hooks if hooks is not None else Hooks()
    o = _prepare(model, cfg, params)
    state = _restore(model, o, run_dir)
    t0 = time.perf_counter() - state["seconds"]
    main = is_main()  # under torchrun only the main process writes
    if cfg.compile:
        compile_blocks(model, cfg.compile)
    model.train()
    with tqdm(total=cfg.steps, initial=state["step"], desc=desc, disable=not (progress and main),
              leave=False, mininterval=2.0) as bar:
        while state["step"] < cfg.steps:
            terms = _optimise(model, step_fn, o, state["step"], cfg)
            if hooks.after_step is not None:
                hooks.after_step()
            state["step"] += 1
            bar.update(1)
            _log(terms, o, state, cfg, bar)
            _check(model, hooks, state, cfg, run_dir)
            state["seconds"] = time.perf_counter() - t0
            if (state["step"] % cfg.ckpt_every == 0 or state["step"] == cfg.steps) and main:
                _save(model, o, state, run_dir)
    return _finish(model, state, run_dir)

"""Pretraining: any method by name on the unlabelled pool, with checkpoints, resumption, per-term
loss history and a collapse monitor.

The data path holds no label: the pool is a :class:`SliceSet` whose labels were removed
(:meth:`~medkit.data.slices.SliceSet.without_labels`), and a :class:`~medkit.methods.base.Batch`
has no field for them.

Run folder::

    RUN_DIR/params.json    method, its full config, schedule, data
    RUN_DIR/history.json   loss terms every log step; RankMe of h and z every val_every steps
    RUN_DIR/checkpoint.pt  resumable state;  RUN_DIR/model.pt  the pretrained method
"""
from __future__ import annotations

import math
import time
import warnings
from dataclasses import asdict
from pathlib import Path

import torch

from medkit.data.batches import BatchSampler
from medkit.data.datasets import DataConfig, load_dataset
from medkit.data.slices import SliceSet
from medkit.diagnostics import collapsed_fraction, effective_rank_cov, rankme
from medkit.engine import distributed
from medkit.engine.checkpoints import load_weights
from medkit.engine.config import TrainConfig
from medkit.engine.device import memory_format, pick_device, seed_everything
from medkit.engine.loop import train_loop
from medkit.engine.runs import new_run, open_run, read_json, write_json
from medkit.errors import MedkitError
from medkit.methods import build_method, method_config
from medkit.methods.registry import ADDED_LATER
from medkit.methods.base import Method


def collapse_monitor(method: Method, probe: torch.Tensor, device: torch.device,
                     max_pixels: int = 4096) -> dict[str, float]:
    """RankMe, covariance effective rank and share of collapsed dimensions (a summary of the
    spectrum) of the embeddings of a fixed probe batch: global
    ones (h, z) and, for dense methods, a fixed sample of pixel embeddings of their maps."""
    method.eval()
    with torch.no_grad():
        emb = method.embed(probe.to(device))
    out = {}
    g = torch.Generator().manual_seed(0)
    for key, e in emb.items():
        e = e.float().cpu()
        if e.ndim == 4:  # (B, C, H, W) -> a fixed sample of pixel embeddings (N, C)
            flat = e.permute(0, 2, 3, 1).reshape(-1, e.shape[1])
            e = flat[torch.randperm(len(flat), generator=g)[:max_pixels]]
        out[f"rankme_{key}"] = rankme(e)
        out[f"erank_cov_{key}"] = effective_rank_cov(e)
        out[f"collapsed_{key}"] = collapsed_fraction(e)
    return out


class TrivialTaskWarning(UserWarning):
    """A contrastive loss term fell far below its chance value at the start of training."""


class TrivialTaskWatch:
    """Watches the loss terms of the first steps of each term's training: a term below
    ``factor`` x its chance value (:meth:`~medkit.methods.base.Method.chance`) within the first
    ``fraction`` of the schedule means its task is trivial (Chaitanya et al.'s local loss on a
    16 x 16 map at 64 px fell from 1.96 to 0.002 by step 25). Warns once per term and records it."""

    def __init__(self, chance: dict[str, float], steps: int, fraction: float = 0.05, factor: float = 0.1) -> None:
        self.chance, self.factor = chance, factor
        self.window = max(1, math.ceil(fraction * steps))
        self.first: dict[str, int] = {}
        self.found: dict[str, dict] = {}

    def __call__(self, step: int, terms: dict[str, torch.Tensor]) -> None:
        for name, level in self.chance.items():
            if name not in terms or name in self.found:
                continue
            start = self.first.setdefault(name, step)
            if step - start >= self.window:
                continue
            value = float(terms[name].detach())
            if value < self.factor * level:
                self.found[name] = {"step": step, "value": value, "chance": level}
                warnings.warn(f"loss term {name!r} fell to {value:.3g} by step {step}, below a tenth of its chance "
                              f"value {level:.2f} within the first {self.window} steps: its task looks trivial "
                              f"(larger maps, more regions or stronger views make it real)", TrivialTaskWarning,
                              stacklevel=2)


def pretrain(method: str, data: str, out: str | Path, cfg: TrainConfig, overrides: dict | None = None,
             image_size: int = DataConfig.image_size, crop: int | None | str = DataConfig.crop,
             frames: str = DataConfig.frames, split: str = DataConfig.split,
             pool_frames: str = DataConfig.pool_frames, probe_size: int = 512,
             resume: bool = False, progress: bool = True, stop_after: int | None = None) -> Path:
    """Pretrain ``method`` on the unlabelled pool of ``data``; returns the run folder.

    Args:
        method: a name from :data:`medkit.methods.METHODS`.
        data: ``"phantom"`` or a Decathlon folder.
        out: run folder (never overwritten; ``resume`` continues it).
        cfg: schedule (lr, steps, batch size, seed, device...).
        overrides: method config keys (unknown keys fail with their names).
        probe_size: slices of the fixed probe batch of the collapse monitor (N well above D).
    """
    mcfg = method_config(method, overrides)
    stride = 2 ** len(mcfg.channels)  # the U-Net halves the image once per level
    if image_size % stride:
        raise MedkitError(f"--image-size {image_size} must be a multiple of {stride} for a U-Net of "
                          f"{len(mcfg.channels)} levels")
    params = {"command": "pretrain", "method": method, "config": asdict(mcfg), "data": str(data),
              "image_size": image_size, "crop": crop, "frames": frames, "pool_frames": pool_frames, "split": split,
              **{k: v for k, v in asdict(cfg).items() if k not in ("device", "compile")}}
    ds = load_dataset(data, image_size=image_size, crop=crop, frames=frames, seed=cfg.seed, split=split,
                      pool_frames=pool_frames)
    pool = ds.part("pool")  # no labels: the pretraining data path has none to read
    if len(pool) == 0:
        raise MedkitError(f"--data {data}: the pretraining pool is empty")
    device = pick_device(cfg.device)
    rank, world = distributed.setup(device)  # (0, 1) unless launched by torchrun
    seed_everything(cfg.seed)
    m = build_method(method, overrides, gather_distributed=world > 1)  # losses see the global batch
    if cfg.batch_size % world:
        raise MedkitError(f"--batch-size {cfg.batch_size} (the global batch) must divide by the {world} processes")
    m.check_batch(cfg.batch_size // world)  # before anything is written
    opener = lambda o, p, r: distributed.on_main(lambda: open_run(o, p, resume=r))  # noqa: E731
    with new_run(out, params, resume, opener=opener, remove=distributed.is_main()) as run:
        if (run / "model.pt").exists():
            return run
        sampler = BatchSampler(pool, cfg.batch_size, m.structured_batches(), rank, world)  # same in all processes
        probe = pool.images[torch.randperm(len(pool), generator=torch.Generator().manual_seed(cfg.seed))[:probe_size]]
        t0 = time.perf_counter()
        watch = TrivialTaskWatch(m.chance(cfg.batch_size // world, image_size), cfg.steps)
        net = distributed.wrap(m, device, cfg.channels_last)  # DDP under torchrun, else m itself
        m = net.module if net is not m else m  # (with SyncBatchNorm on CUDA)

        def step(g: torch.Generator, i: int) -> dict[str, torch.Tensor]:
            b, g = sampler(g)
            terms = net(b.to(device, memory_format(cfg.channels_last)), g, i)
            watch(i, terms)
            return terms

        summary = train_loop(m, step, cfg, run, monitor=lambda: collapse_monitor(m, probe, device),
                             after_step=m.after_step, stop_after=stop_after, progress=progress,
                             desc=f"pretrain {method}")
        if distributed.is_main():
            write_json(run / "summary.json", {**summary, "seconds_total": time.perf_counter() - t0, "processes": world,
                                              "pool_patients": len(set(pool.patients)), "pool_slices": len(pool),
                                              "trivial_terms": watch.found})
        distributed.barrier()
        return run


PARAMS_SCHEMA = {  # what load_pretrained reads of a pretraining run's params.json
    "type": "object", "description": "a JSON object of run parameters",
    "required": ["command", "method", "config", "image_size", "crop", "frames", "seed"],
    "properties": {
        "command": {"const": "pretrain", "description": "'pretrain' (this is not a pretraining run)"},
        "method": {"type": "string", "description": "a method name"},
        "config": {"type": "object", "description": "the method's config (a JSON object)"},
        "image_size": {"type": "integer", "minimum": 1, "description": "a positive integer"},
        "frames": {"enum": ["ed", "es", "both"], "description": "'ed', 'es' or 'both'"},
        "seed": {"type": "integer", "description": "an integer"},
    },
}


def read_params(run_dir: str | Path) -> dict:
    """The checked ``params.json`` of a finished pretraining run folder."""
    run = Path(run_dir)
    if not run.is_dir():
        raise MedkitError(f"{run}: no such pretraining run folder" if not run.exists() else
                          f"{run}: not a folder (a pretraining run folder is expected)")
    pfile, mfile = run / "params.json", run / "model.pt"
    if not pfile.exists() or not mfile.exists():
        raise MedkitError(f"{run}: not a finished pretraining run (needs params.json and model.pt)")
    return read_json(pfile, PARAMS_SCHEMA)


def _method_of(run_dir: str | Path, params: dict) -> Method:
    """A fresh method with the config of a run's ``params.json`` (lists back to tuples)."""
    written = {k: tuple(v) if isinstance(v, list) else v for k, v in params["config"].items()}
    cfg = {**ADDED_LATER.get(params["method"], {}), **written}
    try:
        return build_method(params["method"], cfg)
    except MedkitError as e:
        raise MedkitError(f"{Path(run_dir) / 'params.json'}: {e}") from None


def load_run(run_dir: str | Path) -> tuple[Method, dict]:
    """The pretrained method of a finished pretraining run folder and its checked ``params.json``."""
    params = read_params(run_dir)
    m = _method_of(run_dir, params)
    load_weights(m, Path(run_dir) / "model.pt", f"a {params['method']} with the config of its params.json")
    return m.eval(), params


def load_pretrained(run_dir: str | Path) -> Method:
    """The pretrained method of a finished pretraining run folder."""
    return load_run(run_dir)[0]


def random_twin(run_dir: str | Path, seed: int = 0) -> Method:
    """The method of a finished pretraining run with fresh, seeded random weights: the control that
    any look at its embeddings needs (what an untrained network of the same shape already shows)."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return _method_of(run_dir, read_params(run_dir)).eval()

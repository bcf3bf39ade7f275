"""Pretraining: any method by name on the unlabelled pool, with checkpoints, resumption, per-term
loss history and a collapse monitor.

The data path holds no label: the pool is a :class:`SliceSet` whose labels were removed
(:meth:`~medkit.data.slices.SliceSet.without_labels`), and a :class:`~medkit.data.batches.Batch`
has no field for them. Batches are drawn by :class:`~medkit.data.batches.BatchSampler`; the
monitor is :func:`medkit.diagnostics.monitor.monitor`; finished runs are read back by
:mod:`medkit.engine.loading`.

Run folder::

    RUN_DIR/params.json    method, its full config, schedule, data
    RUN_DIR/history.json   loss terms every log step; RankMe of h and z every val_every steps
    RUN_DIR/checkpoint.pt  resumable state;  RUN_DIR/model.pt  the pretrained method
    RUN_DIR/summary.json   steps, time, processes, the pool's size and any trivial loss term
"""
from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

import torch

from medkit.data.batches import BatchSampler
from medkit.data.datasets import load_dataset
from medkit.data.slices import SliceSet
from medkit.diagnostics.monitor import monitor
from medkit.diagnostics.trivial import TrivialTaskWarning, TrivialTaskWatch  # noqa: F401 (the workflow's warning)
from medkit.engine import distributed
from medkit.engine.device import memory_format, pick_device, seed_everything
from medkit.engine.loop import Hooks, train_loop
from medkit.engine.runs import new_run, open_run, write_json
from medkit.engine.spec import RunSpec
from medkit.errors import MedkitError
from medkit.methods import build_method

PROBE_SLICES = 512  # slices of the collapse monitor's fixed probe batch (N well above D)


def _pool(spec: RunSpec) -> SliceSet:
    """The unlabelled pretraining pool of the spec's data (no labels: the data path has none)."""
    pool = load_dataset(spec.data).part("pool")
    if len(pool) == 0:
        raise MedkitError(f"data {spec.data.data}: the pretraining pool is empty")
    return pool


def pretrain(spec: RunSpec, out: str | Path, resume: bool = False, progress: bool = True) -> Path:
    """Pretrain ``spec.method`` with ``spec.options`` on the unlabelled pool of ``spec.data`` for
    the schedule ``spec.train``; returns the run folder.

    Args:
        spec: data, schedule, method and its options (:class:`~medkit.engine.spec.RunSpec`).
        out: run folder (never overwritten; ``resume`` continues it).

    Example:
        >>> pretrain(RunSpec(DataConfig("phantom", image_size=64), TrainConfig(steps=100), "pix2rep"), "runs/p")
    """
    mcfg, cfg = spec.method_config(), spec.train
    stride = 2 ** len(mcfg.channels)  # the U-Net halves the image once per level
    if spec.data.image_size % stride:
        raise MedkitError(f"image_size {spec.data.image_size} must be a multiple of {stride} for a U-Net of "
                          f"{len(mcfg.channels)} levels")
    params = spec.params("pretrain", method=spec.method, config=asdict(mcfg))
    pool = _pool(spec)
    device = pick_device(cfg.device)
    rank, world = distributed.setup(device)  # (0, 1) unless launched by torchrun
    seed_everything(cfg.seed)
    m = build_method(spec.method, dict(spec.options), gather_distributed=world > 1)  # losses see the global batch
    if cfg.batch_size % world:
        raise MedkitError(f"batch_size {cfg.batch_size} (the global batch) must divide by the {world} processes")
    m.check_batch(cfg.batch_size // world)  # before anything is written
    opener = lambda o, p, r: distributed.on_main(lambda: open_run(o, p, resume=r))  # noqa: E731
    with new_run(out, params, resume, opener=opener, remove=distributed.is_main()) as run:
        if not (run / "model.pt").exists():
            _train(spec, m, pool, run, (rank, world), progress)
        distributed.barrier()
        return run


def _train(spec: RunSpec, m, pool: SliceSet, run: Path, process: tuple[int, int], progress: bool) -> None:
    """The pretraining steps of method ``m`` into ``run``, then its ``summary.json``."""
    cfg, (rank, world) = spec.train, process
    device = pick_device(cfg.device)
    sampler = BatchSampler(pool, cfg.batch_size, m.structured_batches(), rank, world)  # same in all processes
    probe = pool.images[torch.randperm(len(pool), generator=torch.Generator().manual_seed(cfg.seed))[:PROBE_SLICES]]
    watch = TrivialTaskWatch(m.chance(cfg.batch_size // world, spec.data.image_size), cfg.steps)
    net = distributed.wrap(m, device, cfg.channels_last)  # DDP under torchrun, else m itself
    m = net.module if net is not m else m  # (with SyncBatchNorm on CUDA)
    t0 = time.perf_counter()

    def step(g: torch.Generator, i: int) -> dict[str, torch.Tensor]:
        b, g = sampler(g)  # this process's shard and augmentation stream
        terms = net(b.to(device, memory_format(cfg.channels_last)), g, i)
        watch(i, terms)
        return terms

    def check() -> dict[str, float]:
        m.eval()
        with torch.no_grad():
            return monitor(m.embed(probe.to(device)))

    summary = train_loop(m, step, cfg, run, hooks=Hooks(monitor=check, after_step=m.after_step),
                         progress=progress, desc=f"pretrain {spec.method}")
    if distributed.is_main():
        write_json(run / "summary.json", {**summary, "seconds_total": time.perf_counter() - t0, "processes": world,
                                          "pool_patients": len(set(pool.patients)), "pool_slices": len(pool),
                                          "trivial_terms": watch.found})

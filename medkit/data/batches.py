"""Unlabelled batches for pretraining: what a method's step gets, how it is drawn from the pool
(uniformly, or Chaitanya et al.'s structured batches of one slice per partition of m volumes), and
how a global batch is cut into one shard per process under ``torchrun``.

The data stays on this floor from loading to the step: the pretraining workflow only calls
:class:`BatchSampler`.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from medkit.data.slices import SliceSet


@dataclass(frozen=True)
class Batch:
    """Unlabelled slices: images (B, 1, H, W), partition (B,), volume (B,) (case index)."""

    images: torch.Tensor
    partition: torch.Tensor
    volume: torch.Tensor

    def to(self, device: torch.device, memory_format: torch.memory_format = torch.contiguous_format) -> Batch:
        """The batch on ``device`` (images in ``memory_format``)."""
        return Batch(self.images.to(device, memory_format=memory_format), self.partition.to(device),
                     self.volume.to(device))


def partition_table(pool: SliceSet, n_partitions: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Slice indices of every (volume, partition) cell, padded: (n_volumes, S, max_count) and the
    counts (n_volumes, S); a cell with no slice (a volume shorter than S) falls back to all the
    volume's slices. Built once, so that structured batches are drawn without Python loops."""
    def cell(c: int, p: int) -> torch.Tensor:
        of_case = pool.case_index == c
        idx = torch.nonzero(of_case & (pool.partition == p)).flatten()
        return idx if len(idx) else torch.nonzero(of_case).flatten()
    cells = [[cell(c, p) for p in range(n_partitions)] for c in range(len(pool.cases))]
    width = max(len(cell) for row in cells for cell in row)
    table = torch.zeros(len(cells), n_partitions, width, dtype=torch.long)
    counts = torch.zeros(len(cells), n_partitions, dtype=torch.long)
    for c, row in enumerate(cells):
        for p, idx in enumerate(row):
            table[c, p, :len(idx)] = idx
            counts[c, p] = len(idx)
    return table, counts


def sample_batch(pool: SliceSet, batch_size: int, g: torch.Generator, structured: bool,
                 n_partitions: int, table: tuple[torch.Tensor, torch.Tensor] | None = None) -> Batch:
    """A batch of unlabelled slices.

    Args:
        structured: m = batch_size // n_partitions volumes, one random slice from each of their
            partitions (Chaitanya et al.'s batches); else uniformly random slices.
        table: :func:`partition_table` of the pool (built here if not given).
    """
    if structured:
        cells, counts = table if table is not None else partition_table(pool, n_partitions)
        m = max(1, batch_size // n_partitions)
        cases = torch.randperm(len(pool.cases), generator=g)[:m]  # (m,)
        pick = (torch.rand(len(cases), n_partitions, generator=g) * counts[cases]).long()  # (m, S)
        idx = cells[cases].gather(2, pick[:, :, None]).flatten()  # (m*S,) volume-major
    else:
        idx = torch.randint(len(pool), (batch_size,), generator=g)
    return Batch(pool.images[idx], pool.partition[idx], pool.case_index[idx])


def shard(batch: Batch, rank: int, world: int) -> Batch:
    """This process's contiguous 1/world of a global batch (whole volumes for structured batches
    when their number divides by world)."""
    n = batch.images.shape[0] // world
    sl = slice(rank * n, (rank + 1) * n)
    return Batch(batch.images[sl], batch.partition[sl], batch.volume[sl])


class BatchSampler:
    """Draws each step's batch of one process from the unlabelled pool.

    Every process draws the same global batch from the shared generator and keeps its shard
    (:func:`shard`); its augmentation stream is then split off by rank, so that processes augment
    differently but reproducibly.

    Args:
        pool: the unlabelled slices.
        batch_size: the global batch size.
        structured: Chaitanya et al.'s batches (:func:`sample_batch`).
        rank, world: this process and the number of processes.
    """

    def __init__(self, pool: SliceSet, batch_size: int, structured: bool, rank: int = 0, world: int = 1) -> None:
        self.pool, self.batch_size, self.structured = pool, batch_size, structured
        self.rank, self.world = rank, world
        self.n_partitions = int(pool.partition.max()) + 1
        self.table = partition_table(pool, self.n_partitions) if structured else None

    def __call__(self, g: torch.Generator) -> tuple[Batch, torch.Generator]:
        """This process's batch and the generator its augmentations draw from."""
        b = sample_batch(self.pool, self.batch_size, g, self.structured, self.n_partitions, self.table)
        if self.world > 1:  # this process's shard, and its own augmentation stream
            b = shard(b, self.rank, self.world)
            g = torch.Generator().manual_seed(int(torch.randint(2**62, (1,), generator=g)) + self.rank)
        return b, g

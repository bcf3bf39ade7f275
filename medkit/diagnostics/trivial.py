"""The trivial-task watch: a contrastive loss term that falls far below its chance value at the
start of its training solves a task that teaches nothing (Chaitanya et al.'s local loss with
aligned intensity-only views: docs/results.md, the Chaitanya results)."""
from __future__ import annotations

import math
import warnings

import torch


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

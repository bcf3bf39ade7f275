"""Checkpoints: written atomically, read without unpickling code."""
from __future__ import annotations

from pathlib import Path

import torch

from medkit.engine.runs import atomic_write_bytes
from medkit.errors import MedkitError


def save_checkpoint(path: Path, state: dict) -> None:
    """Atomically save a checkpoint (tensors, numbers, strings, lists and dicts only)."""
    atomic_write_bytes(Path(path), lambda f: torch.save(state, f))


def load_checkpoint(path: Path) -> dict:
    """Load a checkpoint safely (``weights_only=True``: no code is unpickled)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise MedkitError(f"{path}: cannot be loaded as a medkit checkpoint ({type(e).__name__}: {e})") from None

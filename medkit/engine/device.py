"""Where a run computes, and how it is seeded."""
from __future__ import annotations

import random

import numpy as np
import torch

from medkit.errors import MedkitError


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


def memory_format(channels_last: bool) -> torch.memory_format:
    """NHWC (channels_last) or the default NCHW layout for image batches."""
    return torch.channels_last if channels_last else torch.contiguous_format

"""Where a run computes, and how it is seeded."""
from __future__ import annotations

import random
import re

import numpy as np
import torch

from medkit.errors import MedkitError


DEVICE_NAMES = re.compile(r"auto|cpu|cuda(:[0-9]+)?")  # the spellings of a device


def check_device_name(name: str) -> None:
    """Raise unless ``name`` is spelt as a device (``"auto"``, ``"cpu"``, ``"cuda"`` or
    ``"cuda:N"``); whether that device exists is :func:`pick_device`'s to find out."""
    if not (isinstance(name, str) and DEVICE_NAMES.fullmatch(name)):
        raise MedkitError(f"device must be auto, cpu or cuda[:N], got {name!r}")


def pick_device(name: str = "auto") -> torch.device:
    """``"auto"`` -> CUDA if available else CPU; a misspelt or unavailable device is a clear error."""
    check_device_name(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise MedkitError(f"device {name}: CUDA is not available on this machine (use auto or cpu)")
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

"""Checkpoints: written atomically, read without unpickling code, and refused in one line."""
from __future__ import annotations

import pickle
import warnings
from pathlib import Path

import torch
from torch import nn

from medkit.engine.runs import atomic_write_bytes
from medkit.errors import MedkitError, one_line


def save_checkpoint(path: Path, state: dict) -> None:
    """Atomically save a checkpoint (tensors, numbers, strings, lists and dicts only)."""
    atomic_write_bytes(Path(path), lambda f: torch.save(state, f))


def _reason(e: Exception) -> str:
    """torch's several-line refusal in a few words: what was refused, or why the file is unreadable."""
    text = str(e)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if isinstance(e, pickle.UnpicklingError) and text.startswith("Weights only load failed"):
        code = next((line for line in lines if "GLOBAL" in line), None)
        if code is not None:  # a pickled function or class: the file could run code
            return f"refused: it holds objects other than weights, which could run code ({one_line(code, 120)})"
        return "damaged or not a torch file"
    if isinstance(e, EOFError) or not lines:
        return "empty or cut short"
    return f"damaged or not a torch file: {one_line(lines[0], 120)}"


def load_checkpoint(path: Path, needs: tuple[str, ...] = ()) -> dict:
    """Load a checkpoint safely (``weights_only=True``: no code is unpickled).

    Args:
        needs: keys the checkpoint must hold (e.g. ``("model",)``).

    Raises:
        MedkitError: one line for a missing, damaged or code-carrying file (torch's warnings
            about it are folded into that line), or a missing key.
    """
    path = Path(path)
    if not path.is_file():
        raise MedkitError(f"{path}: no such checkpoint file")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the refusal below says what went wrong
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:
            raise MedkitError(f"{path}: cannot be loaded as a medkit checkpoint ({_reason(e)})") from None
    missing = [k for k in needs if not isinstance(state, dict) or k not in state]
    if missing:
        raise MedkitError(f"{path}: not a medkit checkpoint of this kind (no {', '.join(map(repr, missing))} entry)")
    return state


def load_weights(module: nn.Module, path: Path, what: str = "this network") -> nn.Module:
    """Load the ``"model"`` weights of checkpoint ``path`` into ``module``; weights of another
    network (another method, other widths) are one line naming the file and the first mismatch."""
    state = load_checkpoint(path, needs=("model",))["model"]
    try:
        module.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as e:
        first = one_line(str(e).split("\n\t", 1)[-1].split("\n")[0], 160)
        raise MedkitError(f"{path}: its weights do not fit {what} ({first})") from None
    return module

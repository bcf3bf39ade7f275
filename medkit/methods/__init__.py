"""Pretraining methods by name: each a short composition of encoder, heads and loss.

    >>> from medkit.methods import build_method
    >>> m = build_method("simclr", {"temperature": 0.2})
"""
from __future__ import annotations

from medkit.methods.registry import METHODS, build_method, method_config, upgrade_config

__all__ = ["METHODS", "build_method", "method_config", "upgrade_config"]

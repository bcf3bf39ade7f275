"""Methods by name. Each entry: the class, its config class and the defaults that define it.

Configs written by older versions (a run's ``params.json``) are read through
:func:`upgrade_config`, the one place that knows how the configs changed.
"""
from __future__ import annotations

from collections.abc import Callable

from medkit.errors import MedkitError
from medkit.methods.base import Method, _convert, make_config
from medkit.methods.chaitanya import Chaitanya, ChaitanyaConfig
from medkit.methods.ideal import IDEAL, IDEALConfig
from medkit.methods.moco_v2 import MedMoCo, MoCo, MoCoConfig
from medkit.methods.pix2rep import Pix2Rep, Pix2RepConfig
from medkit.methods.simclr import SimCLR, SimCLRConfig

METHODS: dict[str, tuple[type[Method], type, dict]] = {
    "simclr": (SimCLR, SimCLRConfig, {}),
    "chaitanya": (Chaitanya, ChaitanyaConfig, {}),
    "moco_v2": (MoCo, MoCoConfig, {}),
    "med_moco": (MedMoCo, MoCoConfig, {"local": True, "whitening": "zca"}),
    "pix2rep": (Pix2Rep, Pix2RepConfig, {}),
    "ideal": (IDEAL, IDEALConfig, {}),
}

# config keys added after runs were written, with the value that reproduces those runs: a
# written config without the key was trained that way (applied by upgrade_config)
ADDED_LATER: dict[str, dict] = {"pix2rep": {"out_width": 0}}

# config keys renamed after runs were written: old name -> new name (applied by upgrade_config)
_MOCO_RENAMED = {"local_level": "encoder_level", "region_size": "region_fraction"}
RENAMED: dict[str, dict[str, str]] = {
    "chaitanya": {"local_level": "decoder_level", "region_size": "region_px"},
    "moco_v2": _MOCO_RENAMED,
    "med_moco": _MOCO_RENAMED,
}


def _whitening_of_zca(written: dict) -> dict:
    """MoCo's ``zca`` (bool: whiten or not) and ``whitening`` (its kind: "zca" or "iternorm")
    became one ``whitening`` ("none", "zca" or "iternorm")."""
    if "zca" not in written:
        return written
    out = dict(written)
    on = out.pop("zca")
    on = _convert("zca", on, bool) if isinstance(on, str) else bool(on)
    out["whitening"] = out.get("whitening", "zca") if on else "none"
    return out


# values whose meaning changed with their name, translated after the renames
TRANSLATED: dict[str, Callable[[dict], dict]] = {"moco_v2": _whitening_of_zca, "med_moco": _whitening_of_zca}


def upgrade_config(method: str, written: dict) -> dict:
    """The config that a run of ``method`` wrote (its ``params.json`` "config"), by any version of
    medkit, in today's names and values: the one way to read old configs.

    Applied in order: renamed keys take their new name (:data:`RENAMED`), values whose type
    changed are translated (:data:`TRANSLATED`), and keys added later get the value that
    reproduces the old runs (:data:`ADDED_LATER`). A config in today's names is returned as it is.

    Changes so far: Chaitanya's ``local_level`` -> ``decoder_level`` and ``region_size`` (pixels)
    -> ``region_px``; MoCo v2 / Med-MoCo's ``local_level`` -> ``encoder_level``, ``region_size`` (a
    fraction of the view) -> ``region_fraction``, and ``zca`` (bool) with ``whitening`` (kind) ->
    ``whitening`` ("none" when ``zca`` was off, else the kind); Pix2Rep's ``out_width`` added
    (0 before).

    Args:
        method: the method's name in :data:`METHODS`.
        written: the config as written (a full config: an old partial one that omits ``zca`` but
            sets ``whitening`` is read in today's meaning).

    Raises:
        MedkitError: when ``written`` holds an old name and its new one.

    Example:
        >>> upgrade_config("med_moco", {"zca": False, "whitening": "zca", "region_size": 0.2})
        {'whitening': 'none', 'region_fraction': 0.2}
    """
    out = dict(written)
    for old, new in RENAMED.get(method, {}).items():
        if old in out and new in out:
            raise MedkitError(f"config of {method}: both {old} and its new name {new} are given")
        if old in out:
            out[new] = out.pop(old)
    if method in TRANSLATED:
        out = TRANSLATED[method](out)
    return {**ADDED_LATER.get(method, {}), **out}


def method_config(name: str, overrides: dict | None = None):
    """The frozen config of method ``name`` with ``overrides`` (unknown keys fail loudly)."""
    if name not in METHODS:
        raise MedkitError(f"unknown method {name!r}; choose one of {', '.join(METHODS)}")
    _, cfg_cls, defaults = METHODS[name]
    return make_config(cfg_cls, {**defaults, **(overrides or {})})


def build_method(name: str, overrides: dict | None = None, gather_distributed: bool = False) -> Method:
    """Build method ``name``; ``overrides`` are config keys (strings are converted).

    ``gather_distributed``: its losses contrast across every process's batch (multi-process runs).
    """
    cfg = method_config(name, overrides)
    return METHODS[name][0](cfg, gather_distributed=gather_distributed)

"""Methods by name. Each entry: the class, its config class and the defaults that define it."""
from __future__ import annotations

from medkit.errors import MedkitError
from medkit.methods.base import Method, make_config
from medkit.methods.chaitanya import Chaitanya, ChaitanyaConfig
from medkit.methods.ideal import IDEAL, IDEALConfig
from medkit.methods.moco_v2 import MedMoCo, MoCo, MoCoConfig
from medkit.methods.pix2rep import Pix2Rep, Pix2RepConfig
from medkit.methods.simclr import SimCLR, SimCLRConfig

METHODS: dict[str, tuple[type[Method], type, dict]] = {
    "simclr": (SimCLR, SimCLRConfig, {}),
    "chaitanya": (Chaitanya, ChaitanyaConfig, {}),
    "moco_v2": (MoCo, MoCoConfig, {}),
    "med_moco": (MedMoCo, MoCoConfig, {"local": True, "zca": True}),
    "pix2rep": (Pix2Rep, Pix2RepConfig, {}),
    "ideal": (IDEAL, IDEALConfig, {}),
}

# config keys added after runs were written, with the value that reproduces those runs: a
# params.json without the key was trained that way (read by pretrain.load_pretrained)
ADDED_LATER: dict[str, dict] = {"pix2rep": {"out_width": 0}}


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

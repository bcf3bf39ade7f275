"""Reading finished runs back: the one place that knows the ``params.json`` schemas of pretraining
and few-label runs, how runs written by older versions are read (their method configs through
:func:`medkit.methods.registry.upgrade_config`), and how their networks are rebuilt. Diagnose,
transfer, compare and the notebooks all load runs through it.

    >>> method, params = load_run("runs/pix2rep")      # a finished pretraining run folder
    >>> control = random_twin("runs/pix2rep", seed=0)  # the same network, untrained
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from medkit.engine.checkpoints import load_weights
from medkit.engine.runs import read_json
from medkit.errors import MedkitError
from medkit.eval.probes import segmentation_model
from medkit.methods import build_method, method_config
from medkit.methods.base import Method
from medkit.methods.registry import upgrade_config
from medkit.models import build_model
from medkit.models.build import MODELS
from medkit.models.unet import DEFAULT_CHANNELS

PRETRAIN_SCHEMA = {  # what is read of a pretraining run's params.json
    "type": "object", "description": "a JSON object of run parameters",
    "required": ["command", "method", "config", "image_size", "crop", "frames", "seed"],
    "properties": {
        "command": {"const": "pretrain", "description": "'pretrain' (this is not a pretraining run)"},
        "method": {"type": "string", "description": "a method name"},
        "config": {"type": "object", "description": "the method's config (a JSON object)"},
        "image_size": {"type": "integer", "minimum": 1, "description": "a positive integer"},
        "frames": {"enum": ["ed", "es", "both"], "description": "'ed', 'es' or 'both'"},
        "seed": {"type": "integer", "description": "an integer"},
    },
}

FEW_LABEL_SCHEMA = {  # what is read back of a supervised or evaluate run's params.json
    "type": "object", "description": "a JSON object of run parameters", "required": ["command"],
    "properties": {"command": {"enum": ["supervised", "evaluate"],
                               "description": "'supervised' or 'evaluate' (a few-label run)"}},
    "allOf": [{"if": {"properties": {"command": {"const": "supervised"}}},
               "then": {"required": ["model"], "properties": {"model": {"enum": list(MODELS),
                                                                        "description": "a model name"}}}},
              {"if": {"properties": {"command": {"const": "evaluate"}}},
               "then": {"required": ["eval_protocol", "checkpoint"],
                        "properties": {"eval_protocol": {"type": "string", "description": "a protocol name"},
                                       "checkpoint": {"type": "string", "description": "a run folder or 'random'"}}}}],
}


def read_params(run_dir: str | Path) -> dict:
    """The checked ``params.json`` of a finished pretraining run folder."""
    run = Path(run_dir)
    if not run.is_dir():
        raise MedkitError(f"{run}: no such pretraining run folder" if not run.exists() else
                          f"{run}: not a folder (a pretraining run folder is expected)")
    pfile, mfile = run / "params.json", run / "model.pt"
    if not pfile.exists() or not mfile.exists():
        raise MedkitError(f"{run}: not a finished pretraining run (needs params.json and model.pt)")
    return read_json(pfile, PRETRAIN_SCHEMA)


def _options(params: dict) -> dict:
    """The method options of a pretraining run's ``params.json``, as written by any version, in
    today's names (lists back to tuples)."""
    written = {k: tuple(v) if isinstance(v, list) else v for k, v in params["config"].items()}
    return upgrade_config(params["method"], written)


def _method_of(run_dir: str | Path, params: dict) -> Method:
    """A fresh method with the config of a run's ``params.json``."""
    try:
        return build_method(params["method"], _options(params))
    except MedkitError as e:
        raise MedkitError(f"{Path(run_dir) / 'params.json'}: {e}") from None


def load_run(run_dir: str | Path) -> tuple[Method, dict]:
    """The pretrained method of a finished pretraining run folder and its checked ``params.json``."""
    params = read_params(run_dir)
    m = _method_of(run_dir, params)
    load_weights(m, Path(run_dir) / "model.pt", f"a {params['method']} with the config of its params.json")
    return m.eval(), params


def load_pretrained(run_dir: str | Path) -> Method:
    """The pretrained method of a finished pretraining run folder."""
    return load_run(run_dir)[0]


def random_twin(run_dir: str | Path, seed: int = 0) -> Method:
    """The method of a finished pretraining run with fresh, seeded random weights: the control that
    any look at its embeddings needs (what an untrained network of the same shape already shows)."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return _method_of(run_dir, read_params(run_dir)).eval()


def architecture(run_dir: str | Path) -> tuple[tuple[int, ...], int]:
    """(channels, out_width) of the U-Net of a finished pretraining run folder."""
    params = read_params(run_dir)
    cfg = method_config(params["method"], _options(params))
    return tuple(cfg.channels), int(getattr(cfg, "out_width", 0))


def load_few_label_model(run_dir: str | Path, sub: str, n_classes: int) -> nn.Module:
    """The trained network of one few-label training (``sub``, e.g. ``"k1_c1"``) of a run folder
    written by ``supervised`` or ``evaluate``."""
    run = Path(run_dir)
    params = read_json(run / "params.json", FEW_LABEL_SCHEMA)
    path = run / sub / "model.pt"
    if not path.exists():
        raise MedkitError(f"{path}: no finished model")
    if params["command"] == "supervised":
        net = build_model(params["model"], n_classes)
    else:
        channels, out_width = tuple(params.get("channels", DEFAULT_CHANNELS)), int(params.get("out_width", 0))
        if params.get("checkpoint") not in (None, "random"):
            channels, out_width = architecture(params["checkpoint"])
        net = segmentation_model(None, n_classes, params["eval_protocol"], channels, out_width=out_width)
    return load_weights(net, path, f"the network of {run}").eval()

"""Evaluate a pretrained U-Net on few labels: linear probe or fine-tuning, with the foundation's
protocol (same splits, schedule and metrics as the supervised baseline)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch

from medkit.engine.checkpoints import load_weights
from medkit.engine.config import TrainConfig
from medkit.engine.runs import read_json
from medkit.errors import MedkitError
from medkit.eval.probes import PROTOCOLS, TRANSFERS, segmentation_model
from medkit.models.unet import DEFAULT_CHANNELS
from medkit.workflows.fewlabel import PARAMS_SCHEMA, run_few_label
from medkit.workflows.pretrain import load_run, read_params


def architecture(checkpoint: str | Path) -> tuple[tuple[int, ...], int]:
    """(channels, out_width) of the U-Net of a finished pretraining run folder."""
    config = read_params(checkpoint)["config"]
    return tuple(config.get("channels", DEFAULT_CHANNELS)), int(config.get("out_width", 0))


def run_evaluation(checkpoint: str | Path, data: str, labelled: list[int | str], eval_protocol: str,
                   out: str | Path, cfg: TrainConfig, transfer: str = "all",
                   like: tuple[tuple[int, ...], int] = (DEFAULT_CHANNELS, 0), **kwargs) -> dict:
    """Few-label evaluation of a pretraining run folder (or ``"random"`` for random init).

    Args:
        checkpoint: a finished pretraining run folder, or ``"random"``.
        eval_protocol: ``"linear"`` (frozen U-Net, 1x1 conv on its hypercolumn), ``"finetune"`` or
            ``"consistency"`` (IDEAL's two decoders).
        transfer: ``"all"`` or ``"encoder"`` (:func:`~medkit.eval.probes.segmentation_model`); random
            initialisation has nothing to transfer and records ``"all"``.
        like: (channels, out_width) of the random-initialisation network (``checkpoint`` "random"), so
            that it has the architecture of the pretrained one it is compared with
            (:func:`architecture`); a wide output map is recorded as ``out_width`` in params.json.
        kwargs: passed to :func:`~medkit.workflows.fewlabel.run_few_label` (image_size, crop, frames, ...).
    """
    if eval_protocol not in PROTOCOLS:
        raise MedkitError(f"--eval-protocol must be one of {', '.join(PROTOCOLS)}, got {eval_protocol!r}")
    if transfer not in TRANSFERS:
        raise MedkitError(f"--transfer must be one of {', '.join(TRANSFERS)}, got {transfer!r}")
    if str(checkpoint) == "random":
        net, source = None, {"checkpoint": "random", "method": "random"}
        if tuple(like[0]) != tuple(DEFAULT_CHANNELS):
            source["channels"] = list(like[0])
        if like[1]:
            source["out_width"] = like[1]
    else:
        method, pre = load_run(checkpoint)
        if "image_size" in kwargs and pre.get("image_size") != kwargs["image_size"]:
            print(f"note: pretrained at image size {pre.get('image_size')}, evaluated at {kwargs['image_size']}")
        net, source = method.net, {"checkpoint": str(Path(checkpoint).resolve()), "method": pre["method"]}
    transfer = transfer if net is not None else "all"
    return run_few_label(data, labelled, out, cfg,
                         lambda n: segmentation_model(net, n, eval_protocol, tuple(like[0]), transfer, like[1]),
                         {"command": "evaluate", "eval_protocol": eval_protocol, "transfer": transfer, **source},
                         **kwargs)


def evaluate_settings(pretrained: str | Path, method: str, data: str, labelled: list[int | str],
                      protocols: list[str], out: str | Path, cfg: TrainConfig, baseline: bool = True,
                      transfer: str = "all", baseline_dir: str | Path | None = None,
                      **kwargs) -> tuple[pd.DataFrame, dict[str, Path]]:
    """Evaluate a pretraining run under each protocol and, with ``baseline``, random initialisation
    under the same protocols, labelled combinations and seeds (notebook 03 and its studies).

    Args:
        pretrained: a finished pretraining run folder of ``method``; the random-initialisation
            settings get its architecture (channels, output width).
        protocols: e.g. ``["linear", "finetune"]``.
        out: one sub-folder per setting, ``eval_<init>_<protocol>`` (resumed when it exists).
        transfer: what of the pretrained U-Net fine-tuning starts from (:func:`run_evaluation`); the
            linear probe always reads the whole pretrained U-Net.
        baseline_dir: where the random-initialisation settings go instead of ``out``: several
            studies sharing it train each random baseline once (finished trainings are read back;
            run them one after the other, not in parallel).
        kwargs: passed to :func:`run_evaluation` (image_size, combos, seeds, progress, ...).

    Returns:
        one tidy table (every row of each setting's ``results.csv`` with ``setting``, ``init`` and
        ``protocol`` columns) and each setting's run folder, by setting name
        (``"<init>, <protocol>"``).
    """
    settings = {}  # name -> (init, checkpoint, protocol)
    for protocol in protocols:
        if baseline:
            settings[f"random, {protocol}"] = ("random", "random", protocol)
        settings[f"{method}, {protocol}"] = (method, pretrained, protocol)
    tables, folders = [], {}
    like = architecture(pretrained)  # the random settings are built like the pretrained network
    for name, (init, ckpt, protocol) in settings.items():
        folder = Path(baseline_dir if init == "random" and baseline_dir else out) / f"eval_{init}_{protocol}"
        loads = transfer if init != "random" and protocol != "linear" else "all"  # a probe reads the whole net
        run_evaluation(ckpt, data, labelled, protocol, folder, cfg, resume=True, transfer=loads,
                       like=like, **kwargs)
        table = pd.read_csv(folder / "results.csv", dtype={"k": str})
        table["setting"], table["init"], table["protocol"] = name, init, protocol
        tables.append(table)
        folders[name] = folder
    return pd.concat(tables, ignore_index=True), folders


def load_few_label_model(run_dir: str | Path, sub: str, n_classes: int) -> torch.nn.Module:
    """The trained network of one few-label training (``sub``, e.g. ``"k1_c1"``) of a run folder
    written by ``supervised`` or ``evaluate``."""
    run = Path(run_dir)
    params = read_json(run / "params.json", PARAMS_SCHEMA)
    path = run / sub / "model.pt"
    if not path.exists():
        raise MedkitError(f"{path}: no finished model")
    if params["command"] == "supervised":
        from medkit.models import build_model
        net = build_model(params["model"], n_classes)
    else:
        channels, out_width = tuple(params.get("channels", DEFAULT_CHANNELS)), int(params.get("out_width", 0))
        if params.get("checkpoint") not in (None, "random"):
            channels, out_width = architecture(params["checkpoint"])
        net = segmentation_model(None, n_classes, params["eval_protocol"], channels, out_width=out_width)
    return load_weights(net, path, f"the network of {run}").eval()

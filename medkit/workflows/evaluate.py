"""``python -m medkit evaluate``: a pretrained U-Net on few labels, by linear probe, fine-tuning or
IDEAL's consistency fine-tuning, with the supervised baseline's protocol (same splits, schedule and
metrics: :func:`medkit.workflows.supervised.run_few_label`)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from medkit.engine.loading import architecture, load_run, read_params
from medkit.engine.spec import RunSpec
from medkit.errors import MedkitError
from medkit.eval.probes import PROTOCOLS, TRANSFERS, segmentation_model
from medkit.models.unet import DEFAULT_CHANNELS
from medkit.workflows.supervised import FewLabelConfig, run_few_label


@dataclass(frozen=True)
class Transfer:
    """How a pretrained U-Net is evaluated.

    Attributes:
        protocol: ``"linear"`` (frozen U-Net, 1x1 conv on its hypercolumn), ``"finetune"`` or
            ``"consistency"`` (IDEAL's two decoders).
        transfer: ``"all"`` or ``"encoder"`` (:func:`~medkit.eval.probes.segmentation_model`); random
            initialisation has nothing to transfer and records ``"all"``.
        like: (channels, out_width) of the random-initialisation network (checkpoint ``"random"``), so
            that it has the architecture of the pretrained one it is compared with
            (:func:`~medkit.engine.loading.architecture`); recorded in params.json where not the default.
    """

    protocol: str = "linear"
    transfer: str = "all"
    like: tuple[tuple[int, ...], int] = (DEFAULT_CHANNELS, 0)

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise MedkitError(f"eval_protocol must be one of {', '.join(PROTOCOLS)}, got {self.protocol!r}")
        if self.transfer not in TRANSFERS:
            raise MedkitError(f"transfer must be one of {', '.join(TRANSFERS)}, got {self.transfer!r}")


def run_evaluation(checkpoint: str | Path, spec: RunSpec, few: FewLabelConfig, how: Transfer, out: str | Path,
                   resume: bool = False, progress: bool = True) -> dict:
    """Few-label evaluation of a pretraining run folder (or ``"random"`` for random init).

    Args:
        checkpoint: a finished pretraining run folder, or ``"random"``.
        spec: the data and the schedule of the few-label trainings.
        few: label budgets, combinations and seeds.
        how: protocol, what is transferred, and the random network's architecture.

    Example:
        >>> run_evaluation("runs/pix2rep", spec, FewLabelConfig((1,)), Transfer("linear"), "runs/pix2rep_linear")
    """
    channels, out_width = tuple(how.like[0]), how.like[1]
    if str(checkpoint) == "random":
        net, source = None, {"checkpoint": "random", "method": "random"}
        if channels != tuple(DEFAULT_CHANNELS):
            source["channels"] = list(channels)
        if out_width:
            source["out_width"] = out_width
    else:
        method, pre = load_run(checkpoint)
        if pre.get("image_size") != spec.data.image_size:
            print(f"note: pretrained at image size {pre.get('image_size')}, evaluated at {spec.data.image_size}")
        net, source = method.net, {"checkpoint": str(Path(checkpoint).resolve()), "method": pre["method"]}
    transfer = how.transfer if net is not None else "all"
    return run_few_label(spec, few, out,
                         lambda n: segmentation_model(net, n, how.protocol, channels, transfer, out_width),
                         {"command": "evaluate", "eval_protocol": how.protocol, "transfer": transfer, **source},
                         resume=resume, progress=progress)


def evaluate_settings(pretrained: str | Path, spec: RunSpec, few: FewLabelConfig, protocols: list[str],
                      out: str | Path, transfer: str = "all", baseline: bool | str | Path = True,
                      progress: bool = True) -> tuple[pd.DataFrame, dict[str, Path]]:
    """Evaluate a pretraining run under each protocol and, with ``baseline``, random initialisation
    under the same protocols, labelled combinations and seeds (notebook 03 and its studies).

    Args:
        pretrained: a finished pretraining run folder; the random-initialisation settings get its
            architecture (channels, output width).
        protocols: e.g. ``["linear", "finetune"]``.
        out: one sub-folder per setting, ``eval_<init>_<protocol>`` (resumed when it exists).
        transfer: what of the pretrained U-Net fine-tuning starts from (:class:`Transfer`); the
            linear probe always reads the whole pretrained U-Net.
        baseline: the random-initialisation settings: ``True`` into ``out``, ``False`` none, or a
            folder that several studies share (each random baseline is trained once, by one process
            at a time: finished trainings are read back).

    Returns:
        one tidy table (every row of each setting's ``results.csv`` with ``setting``, ``init`` and
        ``protocol`` columns) and each setting's run folder, by setting name (``"<init>, <protocol>"``).
    """
    method = read_params(pretrained)["method"]
    like = architecture(pretrained)  # the random settings are built like the pretrained network
    tables, folders = [], {}
    for protocol in protocols:
        inits = ([("random", "random")] if baseline is not False else []) + [(method, pretrained)]
        for init, ckpt in inits:
            shared = init == "random" and not isinstance(baseline, bool)
            folder = Path(baseline if shared else out) / f"eval_{init}_{protocol}"
            loads = transfer if init != "random" and protocol != "linear" else "all"  # a probe reads the whole net
            run_evaluation(ckpt, spec, few, Transfer(protocol, loads, like), folder, resume=True, progress=progress)
            table = pd.read_csv(folder / "results.csv", dtype={"k": str})
            name = f"{init}, {protocol}"
            table["setting"], table["init"], table["protocol"] = name, init, protocol
            tables.append(table)
            folders[name] = folder
    return pd.concat(tables, ignore_index=True), folders

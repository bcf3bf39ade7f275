"""Calibrate the phantom against real data: the supervised baseline on both, same size and schedule.

The phantom stands in for ACDC wherever ``../shared`` is absent, so a few-label effect shown on it
must be of the size it would have on the real scans. ``run_calibration`` trains the random-
initialisation U-Net (:func:`medkit.workflows.supervised.run_supervised`) at each label budget k on
the phantom and on a real data set with one :class:`~medkit.engine.config.TrainConfig`, one image
size and each data set's own labelled combinations, then tabulates, per k, the mean test Dice
(over test volumes, then combinations; overall and per class) on both sides and their difference

    gap_k = Dice_phantom(k) - Dice_real(k),

which should lie within ``TOLERANCE`` (0.10 Dice) at every k. The two sides have different patients,
so the difference is not paired: the spread over combinations is reported beside it.

``python -m medkit calibrate --real ../shared/data/acdc --out papermill_runs/calibration
--reference papermill_runs/reference/phantom_calibration`` writes the committed table read by
notebook 00 (``calibration.csv`` and ``provenance.json``).
"""
from __future__ import annotations

import datetime
import platform
from dataclasses import asdict
from pathlib import Path

import pandas as pd
import torch

from medkit.data.datasets import DataConfig, load_dataset
from medkit.engine.config import TrainConfig
from medkit.engine.spec import RUNTIME_FIELDS, RunSpec
from medkit.engine.runs import read_json, write_json
from medkit.errors import MedkitError
from medkit.workflows.supervised import FewLabelConfig, run_supervised

TOLERANCE = 0.10  # |phantom - real| mean Dice allowed at every k (the phantom issue's target)
CLASSES = ("right ventricle", "myocardium", "left ventricle")


def run_calibration(real: str, out: str | Path, cfg: TrainConfig, labelled: list[int], image_size: int,
                    combos: int | None = None, resume: bool = False, progress: bool = True) -> pd.DataFrame:
    """Train the supervised baseline on the phantom and on ``real`` into ``out/phantom`` and
    ``out/<real's folder name>``; return :func:`calibration_table`.

    ``combos``: labelled combinations per k on each side (None: each split's own).
    """
    if not Path(real).is_dir():
        raise MedkitError(f"real {real}: no such folder (a Decathlon-layout data set, e.g. ../shared/data/acdc)")
    if Path(real).name == "phantom":
        raise MedkitError(f"real {real}: a folder named 'phantom' would share the phantom's run folder; rename it")
    runs = calibration_runs(real, out)
    sides = dict(zip(("phantom", real), runs.values()))  # data -> run folder
    specs = {data: RunSpec(DataConfig(data, image_size=image_size, seed=cfg.seed), cfg) for data in sides}
    few = FewLabelConfig(tuple(labelled), combos)
    for spec in specs.values():  # both data sets and the label budgets are checked before any training
        ds = load_dataset(spec.data)
        for k in labelled:
            ds.split.combinations(k, combos)
    for data, run in sides.items():
        run_supervised(specs[data], few, run, resume=resume, progress=progress)
    return calibration_table(runs)


def calibration_runs(real: str, out: str | Path) -> dict[str, Path]:
    """The two supervised run folders of a calibration under ``out``: the phantom's first."""
    return {"phantom": Path(out) / "phantom", Path(real).name: Path(out) / Path(real).name}


def calibration_table(runs: dict[str, Path]) -> pd.DataFrame:
    """One row per k: each side's mean Dice (overall, per class), spread over combinations and the gap.

    ``runs`` maps a side's name to its finished ``supervised`` folder; the first is the phantom.
    """
    rows: dict[str, dict] = {}
    for side, run in runs.items():
        by_k = read_json(Path(run) / "metrics.json")["by_k"]
        for k, v in by_k.items():
            row = rows.setdefault(k, {"k": k})
            row[f"{side}_combinations"] = v["n_combinations"]
            row[f"{side}_dice"] = v["mean"]["dice_mean"]
            row[f"{side}_sd_combinations"] = v["std_over_combinations"]["dice_mean"]
            for c in CLASSES:
                row[f"{side}_{c}"] = v["mean"].get(f"dice/{c}")
    phantom, real = list(runs)
    table = pd.DataFrame([r for r in rows.values() if f"{real}_dice" in r and f"{phantom}_dice" in r])
    table["gap"] = table[f"{phantom}_dice"] - table[f"{real}_dice"]
    table["within_tolerance"] = table["gap"].abs() <= TOLERANCE
    return table


def format_calibration(table: pd.DataFrame, real: str) -> str:
    """A markdown table: k, phantom and real mean Dice (± spread over combinations), gap, verdict."""
    lines = [f"| k | phantom Dice | {real} Dice | gap | within {TOLERANCE:.2f} |", "|---|---|---|---|---|"]
    for _, r in table.iterrows():
        lines.append(f"| {r['k']} | {r['phantom_dice']:.3f} ± {r['phantom_sd_combinations']:.3f} "
                     f"({r['phantom_combinations']}) | {r[f'{real}_dice']:.3f} ± {r[f'{real}_sd_combinations']:.3f} "
                     f"({r[f'{real}_combinations']}) | {r['gap']:+.3f} | {'yes' if r['within_tolerance'] else 'NO'} |")
    return "\n".join(lines)


def export_calibration(table: pd.DataFrame, out: str | Path, command: str, cfg: TrainConfig, image_size: int,
                       real: str, runs: dict[str, Path]) -> Path:
    """Write ``calibration.csv`` and ``provenance.json`` (commit, command, date, machine, schedule and
    the summed time of the trainings of ``runs``, each side's finished ``supervised`` folder)."""
    from medkit.workflows.reference import commit, machine
    seconds = sum(v["seconds"] for run in runs.values() for v in read_json(Path(run) / "metrics.json")["by_k"].values())
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "calibration.csv", index=False, float_format="%.4f")
    schedule = {k: v for k, v in asdict(cfg).items() if k not in RUNTIME_FIELDS}
    write_json(out / "provenance.json", {
        "study": out.name, "commit": commit(), "command": command,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "train_seconds": round(seconds), "real": real, "image_size": image_size, "schedule": schedule,
        "machine": machine(), "torch": torch.__version__, "python": platform.python_version()})
    return out


def calibration_line(prov: dict) -> str:
    """One line naming where the committed calibration comes from."""
    sch = prov.get("schedule", {})
    return (f"{prov.get('study')}: {prov.get('command')} at commit {str(prov.get('commit'))[:12]}, "
            f"{prov.get('date', '')[:10]}, {prov.get('train_seconds', 0) / 60:.0f} min of training on "
            f"{prov.get('machine', {}).get('cpu_cores')} CPU cores, torch {prov.get('torch')}; "
            f"{prov.get('image_size')} px, {sch.get('steps')} steps of {sch.get('batch_size')} slices")


def load_calibration(folder: str | Path) -> tuple[pd.DataFrame, dict] | None:
    """The committed calibration (table, provenance), or None where it is absent."""
    folder = Path(folder)
    if not (folder / "calibration.csv").exists():
        return None
    return pd.read_csv(folder / "calibration.csv"), read_json(folder / "provenance.json")

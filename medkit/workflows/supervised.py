"""``python -m medkit supervised``: the supervised few-label baseline, a U-Net trained from random
initialisation on k labelled volumes, for every labelled combination of the split, scored by 3D
Dice and HD95 on the held-out test patients. :func:`run_few_label` is the few-label protocol that
``evaluate`` (:mod:`medkit.workflows.evaluate`) runs on pretrained networks.

Layout of a run folder::

    RUN_DIR/params.json          the parameters (a resumed run must match them)
    RUN_DIR/k1_c1/               one training: history.json, checkpoint.pt, model.pt, metrics.json
    RUN_DIR/metrics.json         aggregate: per k, mean and spread over combinations and volumes
    RUN_DIR/results.csv          one row per (k, combination, test case)
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
import pandas as pd
import torch
from torch import nn

from medkit.data.augment import AugmentConfig
from medkit.data.datasets import Dataset, load_dataset
from medkit.engine.config import TrainConfig
from medkit.engine.device import pick_device, seed_everything
from medkit.engine.fit import fit_cross_consistency, fit_segmentation
from medkit.engine.runs import exclusive, new_run, read_json, write_json
from medkit.engine.spec import RunSpec
from medkit.errors import MedkitError
from medkit.eval.predict import evaluate
from medkit.models import build_model
from medkit.models.build import MODELS
from medkit.models.two_decoder import TwoDecoderNet


@dataclass(frozen=True)
class FewLabelConfig:
    """The label budgets and the pairs of a few-label run.

    Attributes:
        labelled: numbers of labelled volumes k, and/or ``"all"``.
        combos: labelled combinations per k: the split's own first, then fixed seeded extra ones
            (:meth:`~medkit.data.splits.Split.combinations`); None: the split's own.
        seeds: training seeds, a second axis of pairs (each combination is trained once per seed;
            the data and split keep their own seed); None: the schedule's seed only.
    """

    labelled: tuple[int | str, ...] = (1, 2, 8)
    combos: int | None = None
    seeds: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if not self.labelled:
            raise MedkitError("labelled is empty")
        if self.combos is not None and (not isinstance(self.combos, int) or self.combos < 1):
            raise MedkitError(f"combos must be a positive number of combinations, got {self.combos!r}")
        if self.seeds is not None and (not self.seeds or len(set(self.seeds)) != len(self.seeds)):
            raise MedkitError(f"seeds must be distinct integers, got {self.seeds!r}")


def parse_labelled(text: str) -> list[int | str]:
    """``"1,2,8,all"`` -> [1, 2, 8, "all"]; anything else is a clear error."""
    out: list[int | str] = []
    for tok in str(text).split(","):
        tok = tok.strip()
        if tok == "all":
            out.append("all")
        elif tok.isdigit() and int(tok) > 0:
            out.append(int(tok))
        else:
            raise MedkitError(f"labelled takes comma-separated positive integers or 'all', got {tok!r}")
    if not out:
        raise MedkitError("labelled is empty")
    return out


def train_and_score(ds: Dataset, patients: tuple[str, ...], cfg: TrainConfig, run_dir: Path,
                    make_model: Callable[[int], nn.Module], progress: bool = True) -> list[dict]:
    """Train one model on ``patients``' labelled volumes, score it on the test set.

    Args:
        make_model: ``make_model(n_classes)`` -> a fresh network (random or pretrained init);
            only its parameters that require grad are trained.

    A finished sub-run (``metrics.json`` present) is read back, not retrained.
    """
    done = run_dir / "metrics.json"
    if done.exists():
        return read_json(done)["cases"]
    seed_everything(cfg.seed)
    model = make_model(ds.slices.n_classes)
    train = ds.slices.select_patients(patients)
    val = ds.part("val") if ds.split.val else None
    t0 = time.perf_counter()
    if isinstance(model, TwoDecoderNet):  # IDEAL: the unlabelled pool joins fine-tuning
        summary = fit_cross_consistency(model, train, ds.part("pool"), cfg, run_dir, val=val, progress=progress)
    else:
        summary = fit_segmentation(model, train, cfg, run_dir, val=val, augment=AugmentConfig(),
                                   progress=progress)
    rows = evaluate(model, ds.part("test"), pick_device(cfg.device))
    write_json(done, {"patients": list(patients), "train_summary": summary,
                      "seconds_total": time.perf_counter() - t0, "cases": rows})
    return rows


def sub_run(k: int | str, combination: int, seed: int, base_seed: int) -> str:
    """The folder of one training: ``k1_c2`` at the run's own seed, ``k1_c2_s5`` at another seed."""
    return f"k{k}_c{combination}" + (f"_s{seed}" if seed != base_seed else "")


def summarise(table: pd.DataFrame) -> dict:
    """Per k: mean Dice per class and overall, mean over test volumes then over combinations,
    with the spread (std) over combinations and over volumes."""
    out = {}
    cols = [c for c in table.columns if c.startswith("dice") or c.startswith("hd95")]
    for k, tk in table.groupby("k", sort=False):
        per_pair = tk.groupby(["combination", "seed"])[cols].mean()  # (combinations x seeds, metrics)
        per_combo = per_pair.groupby(level="combination").mean()  # mean over seeds
        out[str(k)] = {
            "n_combinations": int(len(per_combo)), "n_seeds": int(tk["seed"].nunique()),
            "n_test_volumes": int(tk["case"].nunique()),
            "mean": per_combo.mean().to_dict(),
            "std_over_combinations": per_combo.std(ddof=0).to_dict(),
            "std_over_volumes": tk.groupby(["combination", "seed"])[cols].std(ddof=0).mean().to_dict(),
            "per_combination": per_combo["dice_mean"].to_dict(),
            "seconds": float(tk.drop_duplicates(["combination", "seed"])["seconds"].sum()),
        }
    return out


def run_few_label(spec: RunSpec, few: FewLabelConfig, out: str | Path, make_model: Callable[[int], nn.Module],
                  extra: dict, resume: bool = False, progress: bool = True) -> dict:
    """Train and score ``make_model`` networks for every k of ``few.labelled``, every labelled
    combination of the split and every seed; aggregate into ``out/metrics.json`` and ``out/results.csv``.

    Args:
        spec: the data and the schedule (its seed is the run's own; ``few.seeds`` adds others).
        few: label budgets, combinations and seeds.
        out: run folder (refused if it exists, unless ``resume`` and same parameters).
        make_model: ``make_model(n_classes)`` -> a fresh network.
        extra: what defines the run besides data, schedule and budgets (written to ``params.json``).
        resume: continue an interrupted run; finished trainings are kept, not redone.
    """
    params = spec.params(**extra, labelled=[str(k) for k in few.labelled], combos=few.combos)
    if few.seeds:
        params["seeds"] = list(few.seeds)
    cfg = spec.train
    pick_device(cfg.device)  # an unavailable device fails before anything is read or written
    ds = load_dataset(spec.data)
    jobs = [Job(k, i + 1, combo, seed) for k in few.labelled
            for i, combo in enumerate(ds.split.combinations(k, few.combos)) for seed in (few.seeds or (cfg.seed,))]
    with exclusive(out), new_run(out, params, resume=resume) as run:  # a shared baseline folder: one writer
        return _train_all(ds, jobs, run, cfg, make_model, progress)


class Job(NamedTuple):
    """One training of a few-label run: budget k, combination number (from 1), its patients, seed."""

    k: int | str
    combination: int
    patients: tuple[str, ...]
    seed: int


def _train_all(ds: Dataset, jobs: list[Job], run: Path, cfg: TrainConfig, make_model: Callable[[int], nn.Module],
               progress: bool) -> dict:
    """Every training of ``jobs`` into run folder ``run``, then its ``results.csv`` and ``metrics.json``."""
    rows = []
    for job in jobs:
        sub = run / sub_run(job.k, job.combination, job.seed, cfg.seed)
        t0 = time.perf_counter()
        cases = train_and_score(ds, job.patients, replace(cfg, seed=job.seed), sub, make_model, progress)
        secs = read_json(sub / "metrics.json").get("seconds_total", time.perf_counter() - t0)
        for r in cases:
            rows.append({"k": str(job.k), "combination": job.combination, "seed": job.seed,
                         "patients": "+".join(job.patients), "seconds": secs, **r})
        shown = ", ".join(job.patients[:3]) + (" ..." if len(job.patients) > 3 else "")
        print(f"k={job.k} c{job.combination} seed {job.seed} ({shown}): "
              f"mean Dice {np.mean([r['dice_mean'] for r in cases]):.3f}", flush=True)
    table = pd.DataFrame(rows)
    table.to_csv(run / "results.csv", index=False)
    metrics = {"data": ds.name, "split": ds.split.name, "n_test": len(ds.split.test),
               "device": str(pick_device(cfg.device)), "torch": torch.__version__,
               "by_k": summarise(table)}
    write_json(run / "metrics.json", metrics)
    return metrics


def run_supervised(spec: RunSpec, few: FewLabelConfig, out: str | Path, model: str = "unet",
                   resume: bool = False, progress: bool = True) -> dict:
    """The random-initialisation baseline: :func:`run_few_label` with ``build_model(model)``.

    Example:
        >>> run_supervised(RunSpec(DataConfig("phantom", image_size=64), TrainConfig(steps=400)),
        ...                FewLabelConfig((1, 2)), "runs/supervised")
    """
    if model not in MODELS:
        raise MedkitError(f"model {model!r} is not known; choose one of {', '.join(MODELS)}")
    return run_few_label(spec, few, out, lambda n: build_model(model, n), {"command": "supervised", "model": model},
                         resume=resume, progress=progress)


def format_table(metrics: dict) -> str:
    """A markdown table of mean Dice per class and overall, per k (spread over combinations)."""
    by_k = metrics["by_k"]
    first = next(iter(by_k.values()))["mean"]
    classes = [c for c in first if c.startswith("dice/")]
    head = "| k | combos | " + " | ".join(c[5:] for c in classes) + " | mean Dice (± combos) | HD95 (vox) | time (s) |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for k, v in by_k.items():
        m, s = v["mean"], v["std_over_combinations"]
        lines.append(f"| {k} | {v['n_combinations']} | " + " | ".join(f"{m[c]:.3f}" for c in classes)
                     + f" | {m['dice_mean']:.3f} ± {s['dice_mean']:.3f} | {m.get('hd95_mean', float('nan')):.1f}"
                     + f" | {v['seconds']:.0f} |")
    return "\n".join(lines)

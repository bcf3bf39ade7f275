"""Committed reference results: a finished study's tidy tables with their provenance.

``papermill_runs/reference/<study>/`` holds what a reader on a laptop compares their own run with
(notebooks 01, 03 and 04, docs/results.md): small CSVs and ``provenance.json``, never a
checkpoint or an image.

* ``pairs.csv``: one row per run, setting and (k, combination, seed) pair: the mean over the test
  volumes of the 3D Dice, overall and per class (:func:`medkit.eval.paired.pair_scores`);
* ``differences.csv`` and ``paired.csv``: each pretrained setting against random initialisation
  under the same protocol, pair by pair and summarised (mean, 95 % bootstrap interval, pairs won,
  Wilcoxon p; :func:`medkit.eval.paired.against_random`);
* ``provenance.json``: commit, command, date, wall time, machine, torch version, data.

A collapse reference (``diagnose --reference``, read by notebook 01) holds ``spectra.csv`` (each
run's normalised covariance spectrum of h, z and its pixel embeddings), ``ranks.csv`` (RankMe,
covariance rank and collapsed share per run and embedding) and ``provenance.json`` (with each
pretraining run's parameters).
"""
from __future__ import annotations

import datetime
import os
import platform
import subprocess
from pathlib import Path

import pandas as pd
import torch

from medkit.engine.runs import read_json, write_json
from medkit.errors import MedkitError
from medkit.eval.paired import FAMILY, against_random, pair_scores
from medkit.eval.verdicts import family_verdicts

REPO = Path(__file__).resolve().parents[2]


def commit() -> str:
    """The checked-out commit of the repository, marked ``+dirty`` with uncommitted changes."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def export_reference(study_dir: str | Path, out: str | Path, command: str, code: str | None = None,
                     wall_seconds: float | None = None, workers: int = 1) -> Path:
    """Write the tidy results of every complete run of ``study_dir`` to ``out`` (see the module).

    Args:
        code: the commit the runs ran with (:func:`commit` when the study started); default: now.
        wall_seconds: the study's wall time; default: the sum of its runs' times.
        workers: runs executed in parallel.
    """
    study = Path(study_dir)
    runs = sorted(r for r in study.iterdir() if (r / "done.json").exists() and (r / "results.csv").exists()) \
        if study.is_dir() else []
    if not runs:
        raise MedkitError(f"{study}: no complete run with results to export")
    pairs, diffs, paired, wall = [], [], [], 0.0
    for run in runs:
        point = {k: v for k, v in (read_json(run / "point.json") or {}).items() if k != "notebook"}
        results = pd.read_csv(run / "results.csv", dtype={"k": str})
        for setting, part in results.groupby("setting", sort=False):
            pairs.append(pair_scores(part).drop(columns=["cases"]).assign(setting=setting, run=run.name, **point))
        if {"init", "protocol"} <= set(results) and (results["init"] == "random").any():
            d, summary = against_random(results)
            diffs.append(d.assign(run=run.name, **point))
            paired.append(summary.assign(run=run.name, **point))
        wall += float(read_json(run / "done.json").get("seconds", 0.0))  # the runs' summed time
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    pd.concat(pairs, ignore_index=True).to_csv(out / "pairs.csv", index=False, float_format="%.5f")
    if paired:
        pd.concat(diffs, ignore_index=True).to_csv(out / "differences.csv", index=False, float_format="%.5f")
        table = family_verdicts(pd.concat(paired, ignore_index=True), by=FAMILY)  # the study's table: its families
        table.to_csv(out / "paired.csv", index=False, float_format="%.5f")
    params = read_json(runs[0] / "params.json") if (runs[0] / "params.json").exists() else {}
    write_json(out / "provenance.json", {
        "study": study.name, "commit": code or commit(), "command": command,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "wall_seconds": round(wall if wall_seconds is None else wall_seconds, 1), "run_seconds": round(wall, 1),
        "workers": workers, "runs": [r.name for r in runs],
        "machine": machine(),
        "torch": torch.__version__, "python": platform.python_version(),
        "parameters": params})
    return out


def machine() -> dict:
    """Where a result was computed: platform, CPU cores, torch's threads per process, GPU."""
    return {"platform": platform.platform(), "processor": platform.processor(), "cpu_cores": os.cpu_count(),
            "cpus": torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def export_spectra(diagnose_dir: str | Path, out: str | Path, command: str) -> Path:
    """Write the spectra and ranks of a finished ``diagnose`` folder of several runs to ``out``."""
    src = Path(diagnose_dir)
    params = read_json(src / "params.json")
    spectra, ranks, runs = [], [], {}
    for ck in params["checkpoints"]:
        name = Path(ck).name
        folder = src / name if len(params["checkpoints"]) > 1 else src
        diag, sp = read_json(folder / "diagnostics.json"), read_json(folder / "spectra.json")
        pre = read_json(Path(ck) / "params.json")
        runs[name] = {k: pre.get(k) for k in ("method", "config", "data", "image_size", "pool_frames", "steps",
                                             "batch_size", "lr", "seed")}
        for emb, values in sp.items():
            top = max(values[0], 1e-30)
            spectra += [{"run": name, "method": diag["method"], "embedding": emb, "k": i + 1, "s_over_s1": v / top}
                        for i, v in enumerate(values)]
        for emb in ("h", "z", "pixels"):
            if emb in diag:
                ranks.append({"run": name, "method": diag["method"], "embedding": emb,
                              **{m: diag[emb][m] for m in ("n", "d", "rankme", "erank_cov", "collapsed_fraction")}})
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(spectra).to_csv(out / "spectra.csv", index=False, float_format="%.6g")
    pd.DataFrame(ranks).to_csv(out / "ranks.csv", index=False, float_format="%.4f")
    write_json(out / "provenance.json", {
        "study": out.name, "commit": commit(), "command": command,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "data": params.get("data"), "max_n": params.get("max_n"), "machine": machine(),
        "torch": torch.__version__, "python": platform.python_version(), "pretraining": runs})
    return out


def load_spectra(folder: str | Path) -> tuple[pd.DataFrame, pd.DataFrame, dict] | None:
    """A collapse reference written by :func:`export_spectra`: spectra, ranks, provenance (None if absent)."""
    folder = Path(folder)
    if not (folder / "spectra.csv").exists():
        return None
    return (pd.read_csv(folder / "spectra.csv"), pd.read_csv(folder / "ranks.csv"),
            read_json(folder / "provenance.json"))


def load_reference(root: str | Path) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, dict]]:
    """Every committed reference study under ``root`` (``papermill_runs/reference``): the per-pair
    differences against random initialisation, their summaries (a ``study`` column each) and each
    study's provenance. Empty tables when there is none."""
    diffs, paired, provenance = [], [], {}
    for study in sorted(p for p in Path(root).glob("*") if (p / "paired.csv").exists()):
        diffs.append(pd.read_csv(study / "differences.csv", dtype={"k": str}).assign(study=study.name))
        paired.append(pd.read_csv(study / "paired.csv", dtype={"k": str}).assign(study=study.name))
        provenance[study.name] = read_json(study / "provenance.json")
    if not paired:
        return pd.DataFrame(), pd.DataFrame(), {}
    diffs, paired = pd.concat(diffs, ignore_index=True), pd.concat(paired, ignore_index=True)
    # the same comparison in two studies (Pix2Rep with two output widths) must stay two columns
    shared = paired.groupby("comparison")["study"].nunique()
    for table in (diffs, paired):
        again = table["comparison"].isin(shared[shared > 1].index)
        table.loc[again, "comparison"] = table.loc[again, "comparison"] + " (" + table.loc[again, "study"] + ")"
    return diffs, paired, provenance


def provenance_line(name: str, prov: dict) -> str:
    """One line naming where a reference result comes from."""
    p = prov.get("parameters", {})
    return (f"{name}: {prov.get('command')} at commit {str(prov.get('commit'))[:12]}, {prov.get('date', '')[:10]}, "
            f"{prov.get('wall_seconds', 0) / 3600:.1f} h, {prov.get('workers', 1)} worker(s) of "
            f"{prov.get('machine', {}).get('cpus')} thread(s), "
            f"torch {prov.get('torch')}; {p.get('IMAGE_SIZE')} px, pretraining {p.get('STEPS')} steps, "
            f"{p.get('EVAL_STEPS')} training steps, {p.get('COMBOS')} combinations per k")

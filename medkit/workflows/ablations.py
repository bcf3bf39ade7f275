"""Read a study's run folders into tidy tables: what notebook 04 plots. Never trains.

A study run folder (written by :mod:`medkit.workflows.study` running notebook 03) holds ``point.json``
(its grid labels, e.g. ``{"variant": "local_only", "SEED": 1}``), ``results.csv`` (one row per
test volume, combination, label budget and setting) and ``metrics.json`` (with the final RankMe
of the pretrained embedding h); ``done.json`` marks it complete, ``error.json`` failed.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from medkit.errors import MedkitError


def run_status(study_dir: str | Path) -> pd.DataFrame:
    """One row per run folder: its grid labels, status (done | failed | incomplete), error, seconds
    and the final RankMe of h when the run recorded one."""
    study = Path(study_dir)
    rows = []
    for run in _run_dirs(study):
        point = _read(run / "point.json") or {}
        row = {"run": run.name, **{k: v for k, v in point.items() if k != "notebook"}}
        if (run / "done.json").exists():
            row.update(status="done", seconds=_read(run / "done.json").get("seconds"))
        elif (run / "error.json").exists():
            err = _read(run / "error.json")
            row.update(status="failed", error=err.get("error", ""), seconds=err.get("seconds"))
        else:
            row.update(status="incomplete")
        metrics = _read(run / "metrics.json")
        if isinstance(metrics, dict) and isinstance(metrics.get("rankme_h"), (int, float)):
            row["rankme_h"] = metrics["rankme_h"]
        rows.append(row)
    return pd.DataFrame(rows)


def collect(study_dir: str | Path) -> pd.DataFrame:
    """Every complete run's ``results.csv``, with the run's scalar parameters (its ``params.json``:
    DATA_DIR, IMAGE_SIZE, STEPS, ...) and grid labels as extra columns.

    Returns an empty frame when the study has not been run (or has no complete run with results).
    """
    study = Path(study_dir)
    tables = []
    for run in _run_dirs(study):
        if not ((run / "done.json").exists() and (run / "results.csv").exists()):
            continue
        table = pd.read_csv(run / "results.csv", dtype={"k": str})
        params = _read(run / "params.json") or {}
        point = _read(run / "point.json") or {}
        for key, value in {**params, **point}.items():
            if key != "notebook" and (value is None or isinstance(value, (str, int, float, bool))):
                table[key] = value
        table["run"] = run.name
        tables.append(table)
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()


def grid_order(study_dir: str | Path, key: str = "variant") -> list | None:
    """The values of one grid entry in the order the study file lists them (for plot order)."""
    study = _read(Path(study_dir) / "study.json")
    values = (study or {}).get("grid", {}).get(key)
    return list(values) if values else None


def per_seed(results: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Mean Dice of each run (over test volumes and combinations) for each ``by`` group: one value
    per seed, so that plots show the spread over seeds rather than over volumes."""
    missing = [c for c in by + ["run", "dice_mean"] if c not in results.columns]
    if missing:
        raise MedkitError(f"results have no column(s) {', '.join(missing)}; have {', '.join(results.columns)}")
    return results.groupby(by + ["run"], as_index=False, sort=False)["dice_mean"].mean()


def over_seeds(results: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Table of mean, std and number of seeds (runs) of the per-run mean Dice for each group."""
    runs = per_seed(results, by)
    return runs.groupby(by, sort=False)["dice_mean"].agg(["mean", "std", "count"]).round(3)


def select(results: pd.DataFrame, **filters) -> pd.DataFrame:
    """The rows whose columns equal the given values; a filter that is None, or names a column the
    results do not have, selects everything (e.g. ``select(r, DATA_DIR="phantom", SEED=None)``)."""
    keep = pd.Series(True, index=results.index)
    for column, value in filters.items():
        if value is not None and column in results:
            keep &= results[column] == value
    return results[keep]


def results_for(study_dir: str | Path, **filters) -> tuple[pd.DataFrame, str]:
    """The study's complete results restricted by :func:`select`, and a note for the reader when
    there are none (nothing run yet: the command that runs it; or no run matches the filters)."""
    study = Path(study_dir)
    results = collect(study)
    if results.empty:
        return results, (f"{study.name}: no complete run under {study} yet; run "
                         f"`python -m medkit study papermill_runs/studies/{study.name}.yaml`")
    chosen = select(results, **filters)
    if chosen.empty:
        shown = ", ".join(f"{k}={v!r}" for k, v in filters.items())
        return chosen, f"{study.name}: runs exist but none with {shown}"
    return chosen, ""


def _run_dirs(study: Path) -> list[Path]:
    return sorted(p for p in study.iterdir() if p.is_dir()) if study.is_dir() else []


def _read(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None

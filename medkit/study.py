"""Run a study: notebooks x a parameter grid, executed headless by papermill.

A study file (YAML)::

    name: ablation_med_moco
    notebooks: [notebooks/01_collapse_diagnosis.ipynb]
    base: {DATA_DIR: phantom, STEPS: 200}
    grid: {SEED: [0, 1], IMAGE_SIZE: [64]}

Each grid point of each notebook runs into ``papermill_runs/<name>/<run>/`` (the run name joins
the notebook stem and the grid values) with ``RUN_DIR`` set to that folder; the executed notebook
is written there too. A run with a ``done.json`` is complete and skipped; a failing run writes
``error.json`` with its error and the others go on. At the end a summary table is printed and
written to ``papermill_runs/<name>/summary.csv``.
"""
from __future__ import annotations

import itertools
import json
import os
import time
import traceback
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd
import yaml

from medkit.errors import MedkitError
from medkit.runs import write_json

KEYS = {"name", "notebooks", "base", "grid", "kernel"}


def load_study(path: str | Path) -> dict:
    """Read and check a study file; unknown keys and missing notebooks are clear errors."""
    path = Path(path)
    if not path.exists():
        raise MedkitError(f"{path}: no such study file")
    try:
        study = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise MedkitError(f"{path}: not valid YAML ({e})") from None
    unknown = sorted(set(study) - KEYS)
    if unknown:
        raise MedkitError(f"{path}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(KEYS))}")
    if not study.get("notebooks"):
        raise MedkitError(f"{path}: 'notebooks' must list at least one notebook")
    for nb in study["notebooks"]:
        if not Path(nb).exists():
            raise MedkitError(f"{path}: notebook {nb} not found")
    grid = study.get("grid") or {}
    if not all(isinstance(v, list) and v for v in grid.values()):
        raise MedkitError(f"{path}: every grid entry must be a non-empty list")
    study.setdefault("name", path.stem)
    study.setdefault("base", {})
    study["grid"] = grid
    return study


def grid_points(grid: dict[str, list]) -> list[dict]:
    keys = sorted(grid)
    return [dict(zip(keys, vals)) for vals in itertools.product(*(grid[k] for k in keys))]


def run_name(notebook: str, point: dict) -> str:
    parts = [Path(notebook).stem] + [f"{k}={v}" for k, v in sorted(point.items())]
    return "__".join(parts).replace("/", "_").replace(" ", "")


def _execute(notebook: str, run_dir: str, params: dict, kernel: str) -> dict:
    """Run one notebook into its run folder; never raises (errors are recorded)."""
    import papermill as pm
    run = Path(run_dir)
    run.mkdir(parents=True, exist_ok=True)
    (run / "error.json").unlink(missing_ok=True)
    t0 = time.perf_counter()
    env_before = os.environ.get("MEDKIT_NO_WIDGETS")
    os.environ["MEDKIT_NO_WIDGETS"] = "1"  # headless: matplotlib fallbacks
    try:
        pm.execute_notebook(notebook, str(run / Path(notebook).name),
                            parameters={**params, "RUN_DIR": str(run.resolve())},
                            kernel_name=kernel, progress_bar=False, cwd=str(Path(notebook).parent))
        result = {"status": "done", "seconds": time.perf_counter() - t0}
        write_json(run / "done.json", result)
    except Exception as e:  # a failing grid point must not stop the study
        result = {"status": "failed", "seconds": time.perf_counter() - t0,
                  "error": f"{type(e).__name__}: {str(e).strip().splitlines()[-1] if str(e).strip() else ''}",
                  "traceback": traceback.format_exc(limit=3)}
        write_json(run / "error.json", result)
    finally:
        if env_before is None:
            os.environ.pop("MEDKIT_NO_WIDGETS", None)
    return result


def run_study(path: str | Path, root: str | Path = "papermill_runs", workers: int = 1) -> pd.DataFrame:
    """Run every (notebook, grid point) of a study; returns and writes the summary table."""
    study = load_study(path)
    out = Path(root) / study["name"]
    out.mkdir(parents=True, exist_ok=True)
    jobs, rows = [], []
    for nb in study["notebooks"]:
        for point in grid_points(study["grid"]):
            name = run_name(nb, point)
            run = out / name
            params = {**study["base"], **point}
            if (run / "done.json").exists():
                rows.append({"run": name, "status": "skipped (complete)", **point})
                continue
            jobs.append((name, nb, str(run), params, point))
    kernel = study.get("kernel", "python3")
    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = [(j, pool.submit(_execute, j[1], j[2], j[3], kernel)) for j in jobs]
            results = [(j, f.result()) for j, f in futures]
    else:
        results = [(j, _execute(j[1], j[2], j[3], kernel)) for j in jobs]
    for (name, _, run, _, point), res in results:
        rows.append({"run": name, "status": res["status"], "seconds": round(res["seconds"], 1),
                     "error": res.get("error", ""), **point})
    table = pd.DataFrame(rows)
    table.to_csv(out / "summary.csv", index=False)
    (out / "study.json").write_text(json.dumps(study, indent=2, default=str))
    return table

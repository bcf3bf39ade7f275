"""Run a study: notebooks x a parameter grid, executed headless by papermill.

A study file (YAML)::

    name: ablation_med_moco
    notebooks:                       # a path, or {path: {parameters for that notebook only}}
      - notebooks/03_few_label_evaluation.ipynb: {PROTOCOLS: linear}
    base: {DATA_DIR: phantom, STEPS: 200}
    grid:
      SEED: [0, 1]                   # a list: one parameter, one value per grid point
      variant:                       # a mapping: named parameter sets, merged into the base
        moco_v2: {METHOD: moco_v2}
        local_only: {METHOD: med_moco, OPTIONS: {zca: false}}

Each grid point of each notebook runs into ``papermill_runs/<name>/<run>/`` (the run name joins
the notebook stem and the grid labels) with ``RUN_DIR`` set to that folder; the grid labels are
written to its ``point.json`` (what :mod:`medkit.workflows.ablations` groups by) and the executed notebook
is written there too. A run with a ``done.json`` is complete and skipped; a failing run writes
``error.json`` with its error and the others go on. At the end a summary table is printed and
written to ``papermill_runs/<name>/summary.csv``. A study with ``reference: true`` (the ACDC
campaign) then writes its tidy results and their provenance to ``papermill_runs/reference/<name>/``
(:mod:`medkit.workflows.reference`), to be committed.
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

from medkit.engine.runs import write_json
from medkit.errors import MedkitError

KEYS = {"name", "notebooks", "base", "grid", "kernel", "reference"}


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
    # an entry is a path, or {path: {parameters for that notebook only}}
    study["notebooks"] = [entry if isinstance(entry, dict) else {entry: {}} for entry in study["notebooks"]]
    study["notebook_params"] = {}
    for entry in study["notebooks"]:
        for nb, extra in entry.items():
            if not Path(nb).exists():
                raise MedkitError(f"{path}: notebook {nb} not found")
            if not isinstance(extra or {}, dict):
                raise MedkitError(f"{path}: parameters of notebook {nb} must be a mapping, got {extra!r}")
            study["notebook_params"][nb] = extra or {}
    study["notebooks"] = list(study["notebook_params"])
    grid = study.get("grid") or {}
    for key, val in grid.items():
        if isinstance(val, dict):
            bad = [name for name, params in val.items() if not isinstance(params, dict)]
            if not val or bad:
                raise MedkitError(f"{path}: grid entry {key!r} names parameter sets: each value must be a "
                                  f"mapping of parameters (not {', '.join(map(str, bad)) or 'empty'})")
        elif not (isinstance(val, list) and val):
            raise MedkitError(f"{path}: grid entry {key!r} must be a non-empty list or a mapping of named "
                              "parameter sets")
    study.setdefault("name", path.stem)
    study.setdefault("base", {})
    study["grid"] = grid
    return study


def grid_points(grid: dict[str, list | dict]) -> list[tuple[dict, dict]]:
    """Every grid point as (labels, parameters): a list entry sets its parameter to each value;
    a mapping entry is labelled by its names and merges each named parameter set."""
    keys = sorted(grid)
    choices = [list(grid[k]) for k in keys]  # a mapping iterates over its names
    points = []
    for vals in itertools.product(*choices):
        labels, params = dict(zip(keys, vals)), {}
        for k, v in labels.items():
            params.update(grid[k][v] if isinstance(grid[k], dict) else {k: v})
        points.append((labels, params))
    return points


def run_name(notebook: str, point: dict) -> str:
    parts = [Path(notebook).stem] + [f"{k}={v}" for k, v in sorted(point.items())]
    return "__".join(parts).replace("/", "_").replace(" ", "")


def _execute(notebook: str, run_dir: str, params: dict, labels: dict, kernel: str) -> dict:
    """Run one notebook into its run folder; never raises (errors are recorded)."""
    import papermill as pm
    run = Path(run_dir)
    run.mkdir(parents=True, exist_ok=True)
    (run / "error.json").unlink(missing_ok=True)
    write_json(run / "point.json", {"notebook": Path(notebook).stem, **labels})
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


def run_study(path: str | Path, root: str | Path = "papermill_runs", workers: int = 1,
              overrides: dict | None = None) -> pd.DataFrame:
    """Run every (notebook, grid point) of a study; returns and writes the summary table.

    Args:
        overrides: parameters that replace the study's everywhere, base and grid alike (e.g. tiny
            settings to try a GPU study on a CPU: ``{"STEPS": 2, "DEVICE": "cpu"}``); values are
            read as YAML (``2`` an integer, ``null`` None, ``cpu`` a string).
    """
    study = load_study(path)
    if overrides:
        parsed = {k: yaml.safe_load(v) if isinstance(v, str) else v for k, v in overrides.items()}
        study["base"] = {**study["base"], **parsed}
        study["notebook_params"] = {nb: {**p, **parsed} for nb, p in study["notebook_params"].items()}
        study["grid"] = {key: ({name: {**params, **parsed} for name, params in val.items()} if isinstance(val, dict)
                               else val) for key, val in study["grid"].items() if key not in parsed}
    out = Path(root) / study["name"]
    out.mkdir(parents=True, exist_ok=True)
    jobs, rows = [], []
    for nb in study["notebooks"]:
        for point, values in grid_points(study["grid"]):
            name = run_name(nb, point)
            run = out / name
            params = {**study["base"], **study["notebook_params"][nb], **values}
            if (run / "done.json").exists():
                rows.append({"run": name, "status": "skipped (complete)", **point})
                continue
            jobs.append((name, nb, str(run), params, point))
    kernel = study.get("kernel", "python3")
    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = [(j, pool.submit(_execute, j[1], j[2], j[3], j[4], kernel)) for j in jobs]
            results = [(j, f.result()) for j, f in futures]
    else:
        results = [(j, _execute(j[1], j[2], j[3], j[4], kernel)) for j in jobs]
    for (name, _, run, _, point), res in results:
        rows.append({"run": name, "status": res["status"], "seconds": round(res["seconds"], 1),
                     "error": res.get("error", ""), **point})
    table = pd.DataFrame(rows)
    table.to_csv(out / "summary.csv", index=False)
    table.attrs["summary"] = str(out / "summary.csv")
    (out / "study.json").write_text(json.dumps(study, indent=2, default=str))
    if study.get("reference") and (table["status"] != "failed").all():
        from medkit.workflows.reference import export_reference
        table.attrs["reference"] = str(export_reference(out, Path(root) / "reference" / study["name"],
                                                        command=f"python -m medkit study {path}"))
    return table

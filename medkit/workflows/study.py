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
import re
import shutil
import time
import traceback
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, NamedTuple

import pandas as pd
import yaml

from medkit.engine.runs import read_json, write_json
from medkit.errors import MedkitError, check_schema, one_line

PLAIN_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"  # a folder name, never a path
_PARAMETERS = {"type": "object", "description": "a mapping of notebook parameters",
               "propertyNames": {"pattern": r"^[A-Za-z_][A-Za-z0-9_]*$", "description": "a parameter name"}}
STUDY_SCHEMA = {
    "type": "object", "description": "a mapping with the keys name, notebooks, base and grid",
    "additionalProperties": False, "required": ["notebooks"],
    "properties": {
        "name": {"type": "string", "pattern": PLAIN_NAME,
                 "description": "a plain name (letters, digits, '_', '-', '.'; no '/', not starting with '.')"},
        "notebooks": {"type": "array", "minItems": 1, "description": "a non-empty list of notebooks",
                      "items": {"anyOf": [{"type": "string"},
                                          {"type": "object", "minProperties": 1, "maxProperties": 1,
                                           "additionalProperties": {
                                               "anyOf": [_PARAMETERS, {"type": "null"}],
                                               "description": "a mapping of parameters for this notebook, or empty"}}],
                                "description": "a notebook path, or {path: {parameters for it only}}"}},
        "base": {"anyOf": [_PARAMETERS, {"type": "null"}], "description": "a mapping of notebook parameters"},
        "grid": {"type": ["object", "null"], "description": "a mapping of grid entries",
                 "additionalProperties": {
                     "anyOf": [{"type": "array", "minItems": 1},
                               {"type": "object", "minProperties": 1, "additionalProperties": _PARAMETERS}],
                     "description": "a non-empty list of values, or a mapping of named parameter sets"}},
        "kernel": {"type": "string", "description": "a Jupyter kernel name"},
        "reference": {"type": "boolean", "description": "true or false"},
    },
}
RECORD = "study_params.json"  # in each run folder: the notebook and the exact parameters it ran with
HEADLESS = "MEDKIT_NO_WIDGETS"  # set in the kernels a study starts: static figures, no widgets


def load_study(path: str | Path) -> dict:
    """Read and check a study file against :data:`STUDY_SCHEMA`; a missing notebook, a name that is
    not a plain folder name, and a parameter that the notebook does not declare are one-line errors."""
    path = Path(path)
    if not path.is_file():
        raise MedkitError(f"{path}: no such study file" if not path.exists() else f"{path}: not a file")
    try:
        study = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise MedkitError(f"{path}: not valid YAML{where} ({one_line(getattr(e, 'problem', None) or e)})") from None
    except UnicodeDecodeError:
        raise MedkitError(f"{path}: not a text file") from None
    check_schema(study, STUDY_SCHEMA, str(path))
    # an entry is a path, or {path: {parameters for that notebook only}}
    study["notebook_params"] = {}
    for entry in study["notebooks"]:
        for nb, extra in (entry if isinstance(entry, dict) else {entry: {}}).items():
            if not Path(nb).is_file():
                raise MedkitError(f"{path}: notebook {nb} not found")
            study["notebook_params"][nb] = extra or {}
    study["notebooks"] = list(study["notebook_params"])
    study.setdefault("name", path.stem)
    if not re.match(PLAIN_NAME, str(study["name"])):
        raise MedkitError(f"{path}: the study name {study['name']!r} (the file's stem) is not a plain folder name; "
                          "set 'name:'")
    study["base"] = study.get("base") or {}
    study["grid"] = study.get("grid") or {}
    return study


def check_parameters(study: dict, where: str) -> None:
    """Refuse, before anything runs, a parameter that a notebook does not declare in its
    ``parameters`` cell (a typo would otherwise run with the default and be marked done)."""
    import papermill as pm
    for nb in study["notebooks"]:
        known = set(pm.inspect_notebook(nb))
        for _, values in grid_points(study["grid"]):
            used = {**study["base"], **study["notebook_params"][nb], **values}
            unknown = sorted(set(used) - known)
            if unknown:
                raise MedkitError(f"{where}: {', '.join(map(repr, unknown))} is not a parameter of {nb} "
                                  f"(its parameters: {', '.join(sorted(known - {'RUN_DIR'}))})")


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


class StudyJob(NamedTuple):
    """One notebook run of a study: its run name, the notebook, its run folder, the parameters it
    runs with and the grid labels of its point."""

    name: str
    notebook: str
    run: str
    params: dict
    labels: dict


@contextmanager
def _headless() -> Iterator[None]:
    """``MEDKIT_NO_WIDGETS=1`` for the kernels started inside (they inherit this process's
    environment: matplotlib fallbacks instead of widgets); the variable is restored afterwards,
    set to what it was or unset."""
    before = os.environ.get(HEADLESS)
    os.environ[HEADLESS] = "1"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(HEADLESS, None)
        else:
            os.environ[HEADLESS] = before


def _execute(job: StudyJob, kernel: str) -> dict:
    """Run one notebook into its run folder; never raises (errors are recorded)."""
    import papermill as pm
    run, notebook = Path(job.run), job.notebook
    run.mkdir(parents=True, exist_ok=True)
    (run / "error.json").unlink(missing_ok=True)
    write_json(run / "point.json", {"notebook": Path(notebook).stem, **job.labels})
    write_json(run / RECORD, {"notebook": notebook, "parameters": job.params})
    t0 = time.perf_counter()
    try:
        with _headless():
            pm.execute_notebook(notebook, str(run / Path(notebook).name),
                                parameters={**job.params, "RUN_DIR": str(run.resolve())},
                                kernel_name=kernel, progress_bar=False, cwd=str(Path(notebook).parent))
        result = {"status": "done", "seconds": time.perf_counter() - t0}
        write_json(run / "done.json", result)
    except Exception as e:  # a failing grid point must not stop the study
        result = {"status": "failed", "seconds": time.perf_counter() - t0,
                  "error": f"{type(e).__name__}: {str(e).strip().splitlines()[-1] if str(e).strip() else ''}",
                  "traceback": traceback.format_exc(limit=3)}
        write_json(run / "error.json", result)
    return result


def _plan(run: Path, notebook: str, params: dict, changed: str) -> str:
    """What to do with a grid point's run folder: ``"skip"`` (finished with these parameters),
    ``"run"`` (new, or unfinished with these parameters: resumed), ``"rerun"`` (to be emptied
    first) or a refusal (MedkitError) when a finished run recorded other parameters."""
    record = run / RECORD
    old = None
    if record.exists():
        try:
            old = read_json(record)
        except MedkitError:
            old = {}  # a damaged record: unknown parameters
    same = old is not None and old == json.loads(json.dumps({"notebook": notebook, "parameters": params},
                                                             default=str))
    if old is None:  # no record (a run folder from before records): taken as it is, or resumed
        return "skip" if (run / "done.json").exists() else "run"
    if (run / "done.json").exists():
        if same:
            return "skip"
        if changed == "rerun":
            return "rerun"
        before, now = old.get("parameters") or {}, params
        diff = sorted(k for k in set(before) | set(now) if before.get(k) != now.get(k))
        shown = ", ".join(f"{k}: {before.get(k)!r} -> {now.get(k)!r}" for k in diff[:3])
        raise MedkitError(f"{run}: finished with other parameters ({shown or 'record damaged'}); pass "
                          f"changed=rerun to run it again (its folder is emptied), or restore the study")
    return "run" if same or not run.exists() or not any(run.iterdir()) else "rerun"


def _with_overrides(study: dict, overrides: dict) -> dict:
    """``study`` with ``overrides`` (values read as YAML) replacing its parameters everywhere:
    base, each notebook's own and the grid (a list entry of an overridden name is dropped)."""
    try:
        parsed = {k: yaml.safe_load(v) if isinstance(v, str) else v for k, v in overrides.items()}
    except yaml.YAMLError as e:
        raise MedkitError(f"overrides: a value is not valid YAML ({one_line(getattr(e, 'problem', e))})") from None
    grid = {key: ({name: {**params, **parsed} for name, params in val.items()} if isinstance(val, dict) else val)
            for key, val in study["grid"].items() if key not in parsed}
    return {**study, "base": {**study["base"], **parsed}, "grid": grid,
            "notebook_params": {nb: {**p, **parsed} for nb, p in study["notebook_params"].items()}}


def _plan_all(study: dict, out: Path, changed: str) -> list[tuple[StudyJob, str]]:
    """Every (notebook, grid point) of ``study`` as a job with its :func:`_plan`; raises (and
    nothing is written) if any finished run is refused."""
    planned = []
    for nb in study["notebooks"]:
        for point, values in grid_points(study["grid"]):
            name = run_name(nb, point)
            params = {**study["base"], **study["notebook_params"][nb], **values}
            planned.append((StudyJob(name, nb, str(out / name), params, point),
                            _plan(out / name, nb, params, changed)))
    return planned


def _execute_all(jobs: list[StudyJob], kernel: str, workers: int) -> list[tuple[StudyJob, dict]]:
    """Run ``jobs`` (in ``workers`` processes when more than one) and pair each with its result."""
    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = [(job, pool.submit(_execute, job, kernel)) for job in jobs]
            return [(job, f.result()) for job, f in futures]
    return [(job, _execute(job, kernel)) for job in jobs]


def _summarise(study: dict, out: Path, rows: list[dict]) -> pd.DataFrame:
    """The summary table of the runs, written to ``out/summary.csv`` (its path in
    ``table.attrs["summary"]``), and the study as it ran to ``out/study.json``."""
    table = pd.DataFrame(rows)
    table.to_csv(out / "summary.csv", index=False)
    table.attrs["summary"] = str(out / "summary.csv")
    (out / "study.json").write_text(json.dumps(study, indent=2, default=str))
    return table


def run_study(path: str | Path, root: str | Path = "papermill_runs", workers: int = 1,
              overrides: dict | None = None, changed: str = "refuse") -> pd.DataFrame:
    """Run every (notebook, grid point) of a study; returns and writes the summary table.

    Each run folder records the notebook and the exact parameters it ran with (``study_params.json``).
    A finished run whose record matches is skipped; an unfinished one is resumed when its record
    matches and emptied and run again otherwise; a finished one whose record differs is refused
    (``changed="refuse"``, nothing runs) or emptied and run again (``changed="rerun"``). The
    notebooks' kernels run headless (``MEDKIT_NO_WIDGETS=1``); the variable is restored in this
    process after each notebook.

    Args:
        overrides: parameters that replace the study's everywhere, base and grid alike (e.g. tiny
            settings to try a GPU study on a CPU: ``{"STEPS": 2, "DEVICE": "cpu"}``); values are
            read as YAML (``2`` an integer, ``null`` None, ``cpu`` a string).
        changed: ``"refuse"`` or ``"rerun"``, for finished runs whose parameters changed.

    Example:
        >>> run_study("papermill_runs/studies/ablation_med_moco.yaml", workers=2)
    """
    if workers < 1:
        raise MedkitError(f"workers must be at least 1, got {workers}")
    if changed not in ("refuse", "rerun"):
        raise MedkitError(f"changed must be 'refuse' or 'rerun', got {changed!r}")
    study = load_study(path)
    study = _with_overrides(study, overrides) if overrides else study
    check_parameters(study, str(path))
    started, t0 = None, time.perf_counter()
    if study.get("reference"):
        from medkit.workflows.reference import commit
        started = commit()  # the code the runs run with (a commit made meanwhile must not be credited)
    out = Path(root) / study["name"]
    planned = _plan_all(study, out, changed)
    out.mkdir(parents=True, exist_ok=True)  # every run folder was checked before anything is written
    rows = [{"run": job.name, "status": "skipped (complete)", **job.labels} for job, plan in planned if plan == "skip"]
    for job, plan in planned:
        if plan == "rerun":
            shutil.rmtree(job.run)
    jobs = [job for job, plan in planned if plan != "skip"]
    for job, res in _execute_all(jobs, study.get("kernel", "python3"), workers):
        rows.append({"run": job.name, "status": res["status"], "seconds": round(res["seconds"], 1),
                     "error": res.get("error", ""), **job.labels})
    table = _summarise(study, out, rows)
    if study.get("reference") and (table["status"] != "failed").all():
        from medkit.workflows.reference import export_reference
        table.attrs["reference"] = str(export_reference(
            out, Path(root) / "reference" / study["name"], command=f"python -m medkit study {path}", code=started,
            wall_seconds=time.perf_counter() - t0 if jobs else None, workers=workers))
    return table

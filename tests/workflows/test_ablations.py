"""Reading study run folders for notebook 04: complete runs only, labels as columns, spread over seeds."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from medkit.errors import MedkitError
from medkit.workflows.ablations import collect, grid_order, over_seeds, per_seed, results_for, run_status, select


def _run(study, name, point, dice, done=True, rankme=None):
    run = study / name
    run.mkdir(parents=True)
    (run / "point.json").write_text(json.dumps({"notebook": "03_few_label_evaluation", **point}))
    (run / "params.json").write_text(json.dumps({"DATA_DIR": "phantom", "IMAGE_SIZE": 64, "OPTIONS": {"a": 1}}))
    rows = [{"k": k, "combination": 1, "case": f"c{i}", "dice_mean": d + 0.01 * i, "setting": "m, linear"}
            for k, d in dice.items() for i in range(2)]
    pd.DataFrame(rows).to_csv(run / "results.csv", index=False)
    if done:
        (run / "done.json").write_text(json.dumps({"status": "done", "seconds": 3.0}))
    if rankme is not None:
        (run / "metrics.json").write_text(json.dumps({"rankme_h": rankme}))


def test_collect_reads_complete_runs_with_labels(tmp_path):
    s = tmp_path / "study"
    _run(s, "a0", {"variant": "a", "SEED": 0}, {1: 0.5, 8: 0.8}, rankme=10.0)
    _run(s, "a1", {"variant": "a", "SEED": 1}, {1: 0.7, 8: 0.8}, rankme=12.0)
    _run(s, "b0", {"variant": "b", "SEED": 0}, {1: 0.2, 8: 0.6})
    _run(s, "b1", {"variant": "b", "SEED": 1}, {1: 0.9, 8: 0.9}, done=False)  # still running: ignored
    (s / "c0").mkdir()
    (s / "c0" / "error.json").write_text(json.dumps({"error": "ValueError: boom", "seconds": 1.0}))
    res = collect(s)
    assert set(res["run"]) == {"a0", "a1", "b0"} and set(res["variant"]) == {"a", "b"}
    assert (res["DATA_DIR"] == "phantom").all() and "OPTIONS" not in res  # non-scalar params left out
    runs = per_seed(res, ["k", "variant"])
    assert len(runs) == 6  # 3 runs x 2 budgets, one value per run
    table = over_seeds(res, ["k", "variant"])
    assert table.loc[("1", "a"), "mean"] == pytest.approx(0.605) and table.loc[("1", "a"), "count"] == 2
    assert table.loc[("1", "a"), "std"] == pytest.approx(pd.Series([0.505, 0.705]).std(), abs=1e-3)
    status = run_status(s).set_index("run")
    assert status.loc["b1", "status"] == "incomplete" and status.loc["c0", "status"] == "failed"
    assert "boom" in status.loc["c0", "error"] and status.loc["a1", "rankme_h"] == 12.0
    (s / "study.json").write_text(json.dumps({"grid": {"SEED": [0, 1], "variant": {"b": {}, "a": {}}}}))
    assert grid_order(s) == ["b", "a"] and grid_order(s, "SEED") == [0, 1]


def test_nothing_run_yet_is_empty_not_an_error(tmp_path):
    assert collect(tmp_path / "none").empty and run_status(tmp_path / "none").empty
    with pytest.raises(MedkitError, match="no column"):
        per_seed(pd.DataFrame({"dice_mean": [0.5]}), ["k"])


def test_select():
    res = pd.DataFrame({"run": ["a0", "a1", "b0", "b1"], "k": ["1"] * 4, "variant": ["a", "a", "b", "b"],
                        "dice_mean": [0.50, 0.52, 0.70, 0.72], "SEED": [0, 1, 0, 1], "DATA_DIR": ["phantom"] * 4})
    assert len(select(res, DATA_DIR="phantom", SEED=None, STEPS=5)) == 4  # None and absent columns: no filter
    assert list(select(res, SEED=1)["run"]) == ["a1", "b1"]


def test_results_for_explains_what_is_missing(tmp_path):
    res, note = results_for(tmp_path / "label_budget", DATA_DIR="phantom")
    assert res.empty and "papermill_runs/studies/label_budget.yaml" in note
    _run(tmp_path / "s", "a0", {"variant": "a", "SEED": 0}, {1: 0.5})
    res, note = results_for(tmp_path / "s", IMAGE_SIZE=128)
    assert res.empty and "none with IMAGE_SIZE=128" in note
    res, note = results_for(tmp_path / "s", IMAGE_SIZE=64, SEED=None)
    assert len(res) == 2 and note == ""

"""The study runner: grid points run, complete runs are skipped, a failure is recorded and the rest go on."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from medkit.cli import main
from medkit.errors import MedkitError
from medkit.methods import build_method
from medkit.workflows.study import load_study

NB = Path(__file__).parents[1] / "fixtures" / "tiny_study.ipynb"


def test_study_runs_skips_and_records_failures(tmp_path, capsys):
    study = tmp_path / "s.yaml"
    study.write_text(f"name: s\nnotebooks: [{NB}]\nbase: {{X: 3}}\ngrid: {{FAIL: [false, true]}}\n")
    root = tmp_path / "runs"
    assert main(["study", str(study), "--root", str(root)]) == 1  # one grid point fails on purpose
    ok, bad = root / "s" / "tiny_study__FAIL=False", root / "s" / "tiny_study__FAIL=True"
    assert (ok / "x.txt").read_text() == "6" and (ok / "done.json").exists() and (ok / "tiny_study.ipynb").exists()
    err = json.loads((bad / "error.json").read_text())
    assert "fails on purpose" in err["error"] and not (bad / "done.json").exists()
    capsys.readouterr()
    assert main(["study", str(study), "--root", str(root)]) == 1
    out = capsys.readouterr().out
    assert "skipped (complete)" in out and "failed" in out
    assert "FAIL" in (root / "s" / "summary.csv").read_text()


def test_bad_study_files(tmp_path):
    with pytest.raises(MedkitError, match="no such study file"):
        load_study(tmp_path / "none.yaml")
    f = tmp_path / "b.yaml"
    f.write_text("notebooks: [nope.ipynb]\n")
    with pytest.raises(MedkitError, match="nope.ipynb not found"):
        load_study(f)
    f.write_text(f"notebooks: [{NB}]\ngird: {{}}\n")
    with pytest.raises(MedkitError, match="unknown key.*'gird'; known: base, grid, kernel"):
        load_study(f)


def test_named_variants_merge_parameters_and_label_runs(tmp_path):
    study = tmp_path / "v.yaml"
    study.write_text(f"name: v\nnotebooks: [{NB}]\nbase: {{X: 1}}\n"
                     "grid:\n  variant:\n    small: {X: 2}\n    large: {X: 5}\n")
    root = tmp_path / "runs"
    assert main(["study", str(study), "--root", str(root)]) == 0
    for name, x in (("small", 2), ("large", 5)):
        run = root / "v" / f"tiny_study__variant={name}"
        assert (run / "x.txt").read_text() == str(2 * x)
        assert json.loads((run / "point.json").read_text()) == {"notebook": "tiny_study", "variant": name}


def test_variant_values_must_be_parameter_sets(tmp_path):
    f = tmp_path / "b.yaml"
    f.write_text(f"notebooks: [{NB}]\ngrid: {{variant: {{a: 3}}}}\n")
    with pytest.raises(MedkitError, match="grid.variant.a: must be a mapping of notebook parameters, got 3"):
        load_study(f)
    f.write_text(f"notebooks: [{NB}]\ngrid: {{X: 3}}\n")
    with pytest.raises(MedkitError, match="grid.X: must be a non-empty list of values"):
        load_study(f)


@pytest.mark.parametrize("path", sorted((Path(__file__).parents[2] / "papermill_runs" / "studies").glob("*.yaml")))
def test_shipped_studies_are_valid(path, monkeypatch):
    """Every shipped study loads, and its notebooks accept every parameter it sets."""
    import nbformat

    from medkit.workflows.study import grid_points
    monkeypatch.chdir(path.parents[2])
    study = load_study(path)
    for nb in study["notebooks"]:
        own = set(study["notebook_params"][nb])
        cell = next(c for c in nbformat.read(nb, 4).cells if "parameters" in c.metadata.get("tags", []))
        names = {line.split("=")[0].strip() for line in cell.source.splitlines() if "=" in line}
        for _, params in grid_points(study["grid"]):
            unknown = set(study["base"]) | set(params) | own
            assert unknown <= names, f"{path.name}: {nb} has no parameter(s) {sorted(unknown - names)}"
        for _, params in grid_points(study["grid"]):  # every method a study names builds with its options
            merged = {**study["base"], **study["notebook_params"][nb], **params}
            if "METHOD" in merged:
                method = build_method(merged["METHOD"], merged.get("OPTIONS") or {})
                method.check_batch(merged.get("PRETRAIN_BATCH", 16))


def test_overrides_replace_parameters_everywhere(tmp_path, monkeypatch):
    """study --set: a value replaces the base, a named set's value and a list entry of the grid."""
    from medkit.workflows import study as st
    seen = []
    monkeypatch.setattr(st, "_execute", lambda job, kernel: seen.append(job.params) or
                        {"status": "done", "seconds": 0.0})
    f = tmp_path / "s.yaml"
    f.write_text(f"name: s\nnotebooks: [{NB}]\nbase: {{N: 1, DEVICE: cuda}}\n"
                 "grid:\n  variant: {a: {N: 2}, b: {N: 3}}\n  SEED: [0, 1]\n")
    table = st.run_study(f, root=tmp_path, overrides={"N": "5", "DEVICE": "cpu", "SEED": "7"})
    assert len(table) == 2 and [p["N"] for p in seen] == [5, 5]
    assert all(p["DEVICE"] == "cpu" and p["SEED"] == 7 for p in seen)


def test_runs_record_their_parameters_and_a_changed_study_is_refused_or_rerun(tmp_path, capsys):
    study = tmp_path / "p.yaml"
    root = tmp_path / "runs"
    run = root / "p" / "tiny_study"
    study.write_text(f"name: p\nnotebooks: [{NB}]\nbase: {{X: 1}}\n")
    assert main(["study", str(study), "--root", str(root)]) == 0
    record = json.loads((run / "study_params.json").read_text())
    assert record == {"notebook": str(NB), "parameters": {"X": 1}} and (run / "x.txt").read_text() == "2"
    capsys.readouterr()
    assert main(["study", str(study), "--root", str(root)]) == 0 and "skipped (complete)" in capsys.readouterr().out
    study.write_text(f"name: p\nnotebooks: [{NB}]\nbase: {{X: 4}}\n")  # the base changed
    assert main(["study", str(study), "--root", str(root)]) == 2
    err = capsys.readouterr().err
    assert "finished with other parameters (X: 1 -> 4)" in err and "--changed rerun" in err
    assert (run / "x.txt").read_text() == "2"  # refused: nothing ran, nothing changed
    assert main(["study", str(study), "--root", str(root), "--changed", "rerun"]) == 0
    assert (run / "x.txt").read_text() == "8"
    assert json.loads((run / "study_params.json").read_text())["parameters"] == {"X": 4}


def test_unknown_parameters_are_refused_before_any_run(tmp_path, capsys):
    study = tmp_path / "u.yaml"
    study.write_text(f"name: u\nnotebooks: [{NB}]\ngrid: {{X: [1, 2], XX: [3]}}\n")
    assert main(["study", str(study), "--root", str(tmp_path / "runs")]) == 2
    assert "'XX' is not a parameter of" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("before", [None, "0"])
def test_kernels_run_headless_and_the_environment_is_left_as_it_was(before, tmp_path, monkeypatch):
    """MEDKIT_NO_WIDGETS=1 while each notebook runs (its kernel inherits it), a failing one
    included; afterwards the study's own process has the variable as before: unset, or "0"."""
    import os

    import papermill

    from medkit.workflows import study as st
    if before is None:
        monkeypatch.delenv("MEDKIT_NO_WIDGETS", raising=False)
    else:
        monkeypatch.setenv("MEDKIT_NO_WIDGETS", before)
    seen = []

    def execute(notebook, output, parameters, **_):
        seen.append(os.environ.get("MEDKIT_NO_WIDGETS"))
        if parameters["FAIL"]:
            raise RuntimeError("fails on purpose")
    monkeypatch.setattr(papermill, "execute_notebook", execute)
    f = tmp_path / "s.yaml"
    f.write_text(f"name: s\nnotebooks: [{NB}]\ngrid: {{FAIL: [false, true]}}\n")
    table = st.run_study(f, root=tmp_path / "runs")
    assert sorted(table["status"]) == ["done", "failed"] and seen == ["1", "1"]
    assert os.environ.get("MEDKIT_NO_WIDGETS") == before

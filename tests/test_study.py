"""The study runner: grid points run, complete runs are skipped, a failure is recorded and the rest go on."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from medkit.cli import main
from medkit.errors import MedkitError
from medkit.study import load_study

NB = Path(__file__).parent / "data" / "tiny_study.ipynb"


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
    with pytest.raises(MedkitError, match="unknown key"):
        load_study(f)

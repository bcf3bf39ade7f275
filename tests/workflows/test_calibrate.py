"""The phantom's calibration table: hand-computed gaps from two finished supervised runs, and the CLI."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from medkit.cli import main
from medkit.workflows.calibrate import TOLERANCE, calibration_table, format_calibration, load_calibration


def _run(folder, by_k: dict) -> None:
    folder.mkdir(parents=True)
    metrics = {"by_k": {k: {"n_combinations": n, "mean": {"dice_mean": d, "dice/right ventricle": d - 0.1,
                                                          "dice/myocardium": d, "dice/left ventricle": d + 0.1},
                            "std_over_combinations": {"dice_mean": sd}} for k, (n, d, sd) in by_k.items()}}
    (folder / "metrics.json").write_text(json.dumps(metrics))


def test_table_gaps_by_hand(tmp_path):
    _run(tmp_path / "phantom", {"1": (3, 0.60, 0.05), "2": (3, 0.70, 0.04), "8": (3, 0.90, 0.01)})
    _run(tmp_path / "acdc", {"1": (5, 0.55, 0.03), "2": (5, 0.65, 0.02), "8": (3, 0.75, 0.02), "4": (1, 0.7, 0.0)})
    table = calibration_table({"phantom": tmp_path / "phantom", "acdc": tmp_path / "acdc"})
    assert table["k"].tolist() == ["1", "2", "8"]  # k = 4 has no phantom side
    assert table["gap"].tolist() == pytest.approx([0.05, 0.05, 0.15])
    assert table["within_tolerance"].tolist() == [True, True, False] and TOLERANCE == 0.10
    assert table["acdc_left ventricle"].tolist() == pytest.approx([0.65, 0.75, 0.85])
    text = format_calibration(table, "acdc")
    assert "| 8 | 0.900 ± 0.010 (3) | 0.750 ± 0.020 (3) | +0.150 | NO |" in text


def test_cli_trains_both_sides_and_writes_the_reference(tmp_path, phantom_dir, capsys):
    ref = tmp_path / "ref"
    argv = ["calibrate", "--real", str(phantom_dir), "--out", str(tmp_path / "cal"), "--labelled", "1",
            "--image-size", "32", "--steps", "2", "--batch-size", "4", "--val-every", "0", "--quiet",
            "--reference", str(ref)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert (tmp_path / "cal" / "phantom" / "metrics.json").exists()
    assert (tmp_path / "cal" / phantom_dir.name / "metrics.json").exists()
    table, prov = load_calibration(ref)
    assert len(table) == 1 and table["k"].astype(str).tolist() == ["1"]
    written = pd.read_csv(ref / "calibration.csv")
    assert written["gap"].iloc[0] == pytest.approx(written["phantom_dice"].iloc[0]
                                                   - written[f"{phantom_dir.name}_dice"].iloc[0], abs=1e-4)
    assert prov["command"].startswith("python -m medkit calibrate --real ") and "--steps 2" in prov["command"]
    assert prov["schedule"]["steps"] == 2 and prov["image_size"] == 32 and prov["train_seconds"] >= 0
    assert "| 1 |" in out
    assert main(argv + ["--resume"]) == 0  # a finished calibration is read back, not retrained
    assert load_calibration(tmp_path / "nothing") is None

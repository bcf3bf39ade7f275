"""A finished study's tidy results and provenance, as committed under papermill_runs/reference/."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from medkit.errors import MedkitError
from medkit.workflows.reference import export_reference, load_reference, provenance_line


def test_export_writes_pair_scores_paired_table_and_provenance(tmp_path):
    run = tmp_path / "study" / "03__variant=pix"
    run.mkdir(parents=True)
    rows = [{"k": "1", "combination": c, "seed": 0, "patients": f"p{c}", "case": case, "setting": f"{init}, finetune",
             "init": init, "protocol": "finetune", "dice_mean": d + 0.05 * c, "dice/LV": d + 0.1}
            for init, base in (("random", 0.5), ("pix", 0.6)) for c in (1, 2)
            for case, d in (("t1", base), ("t2", base + 0.1))]
    pd.DataFrame(rows).to_csv(run / "results.csv", index=False)
    (run / "done.json").write_text(json.dumps({"status": "done", "seconds": 12.5}))
    (run / "point.json").write_text(json.dumps({"notebook": "03", "variant": "pix"}))
    (run / "params.json").write_text(json.dumps({"DATA_DIR": "acdc", "COMBOS": 2}))
    out = export_reference(tmp_path / "study", tmp_path / "ref", command="python -m medkit study s.yaml")
    pairs = pd.read_csv(out / "pairs.csv")
    assert len(pairs) == 4 and set(pairs["setting"]) == {"random, finetune", "pix, finetune"}
    assert pairs.loc[pairs["setting"] == "pix, finetune", "dice_mean"].tolist() == pytest.approx([0.70, 0.75])
    assert (pairs["variant"] == "pix").all()
    paired = pd.read_csv(out / "paired.csv").set_index("metric")
    assert paired.loc["dice_mean", "mean_diff"] == pytest.approx(0.1) and paired.loc["dice_mean", "won"] == 2
    assert len(pd.read_csv(out / "differences.csv")) == 2
    diffs, summary, prov = load_reference(tmp_path)
    assert set(summary["study"]) == {"ref"} and len(diffs) == 2 and prov["ref"]["wall_seconds"] == 12.5
    assert "python -m medkit study s.yaml" in provenance_line("ref", prov["ref"])
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["command"] == "python -m medkit study s.yaml" and prov["wall_seconds"] == 12.5
    assert prov["parameters"]["COMBOS"] == 2 and prov["torch"] and prov["commit"]
    with pytest.raises(MedkitError, match="no complete run"):
        export_reference(tmp_path / "empty", tmp_path / "ref2", command="x")
    # a study that ran runs in parallel gives its own wall time and the commit it started from
    out = export_reference(tmp_path / "study", tmp_path / "ref3", command="x", code="abc123+dirty",
                           wall_seconds=7.0, workers=2)
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["commit"] == "abc123+dirty" and prov["wall_seconds"] == 7.0 and prov["run_seconds"] == 12.5
    assert prov["workers"] == 2
    # the same comparison committed by two studies stays two columns, each named by its study
    diffs, summary, _ = load_reference(tmp_path)
    assert set(summary["comparison"]) == {"pix, finetune - random, finetune (ref)",
                                          "pix, finetune - random, finetune (ref3)"}
    assert set(diffs["comparison"]) == set(summary["comparison"])

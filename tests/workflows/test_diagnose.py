from __future__ import annotations

import json

import pytest

from medkit.cli import main


def test_diagnose_writes_measures_and_figures(tmp_path, capsys):
    common = ["--data", "phantom", "--image-size", "32"]
    assert main(["pretrain", "--method", "med_moco", "--set", "channels=8,16,32,64", "--set", "queue=32",
                 "--set", "n_regions=4", "--out", str(tmp_path / "p"), "--steps", "4", "--val-every", "2",
                 "--quiet", *common]) == 0
    assert main(["diagnose", "--checkpoint", str(tmp_path / "p"), "--out", str(tmp_path / "d"), *common[:2]]) == 0
    r = json.loads((tmp_path / "d" / "diagnostics.json").read_text())
    assert r["h"]["d"] == 64 and 1 <= r["h"]["rankme"] <= 64 and r["z"]["d"] == 128
    assert 0 <= r["clusters"]["nmi"] <= 1 and "rankme" in r["effective_rank"]
    figs = {p.name for p in (tmp_path / "d" / "figures").iterdir()}
    assert {"spectra.png", "correlation_h.png", "rank_history.png", "pca_rgb.png", "clusters.png"} <= figs
    assert "RankMe" in capsys.readouterr().out
    # never overwrites
    assert main(["diagnose", "--checkpoint", str(tmp_path / "p"), "--out", str(tmp_path / "d"), *common[:2]]) == 2


def test_diagnose_compares_runs(tmp_path):
    common = ["--data", "phantom", "--image-size", "32", "--steps", "2", "--val-every", "1", "--quiet"]
    for m in ("moco_v2", "simclr"):
        assert main(["pretrain", "--method", m, "--set", "channels=8,16,32,64", "--out", str(tmp_path / m), *common]
                    + (["--set", "queue=32"] if m == "moco_v2" else [])) == 0
    assert main(["diagnose", "--checkpoint", str(tmp_path / "moco_v2"), "--checkpoint", str(tmp_path / "simclr"),
                 "--data", "phantom", "--out", str(tmp_path / "d")]) == 0
    s = json.loads((tmp_path / "d" / "summary.json").read_text())
    assert set(s["runs"]) == {"moco_v2", "simclr"} and "h_rankme" in s["runs"]["simclr"]
    assert (tmp_path / "d" / "figures" / "spectra_h.png").exists() and (tmp_path / "d" / "simclr" / "diagnostics.json").exists()
    # an interrupted diagnosis (one run measured, no summary yet) is continued with --resume:
    # the measured run is read back, not measured again, and the summary is the same
    (tmp_path / "d" / "summary.json").unlink()
    (tmp_path / "d" / "moco_v2" / "diagnostics.json").unlink()
    kept = (tmp_path / "d" / "simclr" / "diagnostics.json").stat().st_mtime_ns
    args = ["diagnose", "--checkpoint", str(tmp_path / "moco_v2"), "--checkpoint", str(tmp_path / "simclr"),
            "--data", "phantom", "--out", str(tmp_path / "d")]
    assert main(args) == 2  # without --resume the folder is refused
    assert main([*args, "--resume", "--reference", str(tmp_path / "ref")]) == 0
    assert (tmp_path / "d" / "simclr" / "diagnostics.json").stat().st_mtime_ns == kept
    assert json.loads((tmp_path / "d" / "summary.json").read_text()) == s
    # the reference export (notebook 01's overlay): normalised spectra and the ranks of summary.json
    from medkit.workflows.reference import load_spectra
    spectra, ranks, prov = load_spectra(tmp_path / "ref")
    first = spectra[spectra["k"] == 1]
    assert set(spectra["run"]) == {"moco_v2", "simclr"} and (first["s_over_s1"] == 1.0).all()
    h = ranks[ranks["embedding"] == "h"].set_index("run")["rankme"]
    assert h.to_dict() == pytest.approx({r: s["runs"][r]["h_rankme"] for r in ("moco_v2", "simclr")}, rel=1e-3)
    assert prov["pretraining"]["simclr"]["method"] == "simclr" and "--reference" in prov["command"]

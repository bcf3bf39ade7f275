from __future__ import annotations

import json

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

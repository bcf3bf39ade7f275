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
    assert r["h"]["d"] == 64 and r["z"]["d"] == 128 and "rankme" in r["effective_rank"]
    # the same embeddings, measured independently: RankMe from numpy's singular values of the raw N x D
    # matrix (p = s / sum(s) + 1e-7, exp of the entropy); k-means (sklearn) of the middle slice of the first
    # volume's L2-normalised pixel embeddings into 4 clusters, NMI by hand from the contingency table
    import numpy as np
    import torch
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score

    from medkit.data.datasets import DataConfig, load_dataset
    from medkit.diagnostics.extract import global_embeddings
    from medkit.engine.loading import load_run
    method, pre = load_run(tmp_path / "p")
    s = load_dataset(DataConfig("phantom", image_size=32, crop=pre["crop"], frames=pre["frames"],
                                seed=pre["seed"])).slices
    emb = global_embeddings(method, s, max_n=2048)
    for key in ("h", "z"):
        sv = np.linalg.svd(emb[key].double().numpy(), compute_uv=False)
        p = sv / sv.sum() + 1e-7
        assert r[key]["n"] == len(emb[key]) and r[key]["rankme"] == pytest.approx(np.exp(-(p * np.log(p)).sum()),
                                                                                 rel=1e-5), key
    imgs, labs = s.volume(0)
    mid = len(imgs) // 2
    with torch.no_grad():
        fmap = method.net.features(imgs[mid:mid + 1])["out"][0].double().numpy()
    x = fmap.reshape(len(fmap), -1).T
    clusters = KMeans(n_clusters=4, n_init=4, random_state=0).fit_predict(x / np.linalg.norm(x, axis=1,
                                                                                          keepdims=True))
    truth = labs[mid].numpy().reshape(-1)
    joint = np.histogram2d(truth, clusters, bins=(np.arange(5), np.arange(5)))[0] / truth.size
    pt, pc = joint.sum(1), joint.sum(0)
    nz = joint > 0
    mi = (joint[nz] * np.log(joint[nz] / np.outer(pt, pc)[nz])).sum()
    entropy = [-(q[q > 0] * np.log(q[q > 0])).sum() for q in (pt, pc)]
    assert r["clusters"]["nmi"] == pytest.approx(mi / np.mean(entropy), abs=1e-9)
    assert r["clusters"]["ari"] == pytest.approx(adjusted_rand_score(truth, clusters), abs=1e-9)
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

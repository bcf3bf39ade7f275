"""``python -m medkit diagnose``: collapse measures and figures of a pretraining run.

Writes ``OUT/diagnostics.json`` (for h, z and pixel embeddings: RankMe, covariance effective
rank, collapsed and dead dimensions, std of normalised embeddings, uniformity; alignment of
the two views' z; k-means ARI/NMI of one slice's pixel embeddings) and ``OUT/figures/*.png``.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import torch

from medkit.data.datasets import DataConfig, load_dataset
from medkit.data.views import make_views
from medkit.diagnostics import alignment, correlation_matrix, spectrum
from medkit.diagnostics.extract import dense_embeddings, global_embeddings
from medkit.diagnostics.monitor import measures
from medkit.engine.device import pick_device
from medkit.engine.loading import load_run
from medkit.engine.runs import new_run, read_json, save_figure, write_json
from medkit.errors import MedkitError
from medkit.viz import embeddings as ve
from medkit.viz import spectra as vs


def diagnose(checkpoints: str | Path | list, data: str, out: str | Path, max_n: int = 2048,
             device: str = "auto", resume: bool = False) -> dict:
    """Measure and plot one or several finished pretraining runs on ``data``.

    One run writes into ``out``; several write each into ``out/<run name>/`` and add the spectra
    of all of them in one figure per embedding (``out/figures/spectra_h.png``, ``spectra_z.png``)
    and a table (``out/summary.json``). Every checkpoint, the data and the device are checked
    before anything is written; ``resume`` continues an interrupted ``out`` (runs with a
    ``diagnostics.json`` are read back, not measured again).
    """
    if max_n < 2:
        raise MedkitError(f"max_n must be at least 2 (slices embedded), got {max_n}")
    cks = [checkpoints] if isinstance(checkpoints, (str, Path)) else list(checkpoints)
    names = [Path(c).name for c in cks]
    if len(set(names)) != len(names):
        raise MedkitError(f"checkpoint folders must have distinct names, got {', '.join(names)}")
    pretrained = [load_run(ck) for ck in cks]  # each checked before writing
    dev = pick_device(device)
    data_of, inputs = {}, []
    for (m, pre), ck in zip(pretrained, cks):  # one data set per (size, crop, frames, seed) of the runs
        key = (pre["image_size"], pre["crop"], pre["frames"], pre["seed"])
        if key not in data_of:
            data_of[key] = load_dataset(DataConfig(data, image_size=key[0], crop=key[1], frames=key[2], seed=key[3]))
        inputs.append((m, pre, data_of[key], Path(ck)))
    params = {"command": "diagnose", "checkpoints": [str(Path(c).resolve()) for c in cks], "data": str(data),
              "max_n": max_n}
    with new_run(out, params, resume=resume) as run:
        if len(cks) == 1:
            return _diagnose_one(*inputs[0], run, max_n, dev)[0]
        results, spectra = {}, {"h": {}, "z": {}}
        for args, name in zip(inputs, names):
            results[name], sp = _diagnose_one(*args, run / name, max_n, dev)
            for key in spectra:
                if key in sp:
                    spectra[key][name] = sp[key]
        for key, sp in spectra.items():
            if sp:
                fig = vs.plot_spectra(sp, f"{key}: singular values of the embedding covariance")
                save_figure(fig, run, f"spectra_{key}")
                plt.close(fig)
        summary = {name: {f"{k}_{m}": r[k][m] for k in ("h", "z") if k in r for m in ("rankme", "erank_cov",
                   "collapsed_fraction")} for name, r in results.items()}
        write_json(run / "summary.json", {"effective_rank": next(iter(results.values()))["effective_rank"],
                                          "runs": summary})
        return {"runs": results, "summary": summary}


def _diagnose_one(method, pre: dict, ds, checkpoint: Path, run: Path, max_n: int,
                  dev: torch.device) -> tuple[dict, dict]:
    """Measures and figures of one pretrained ``method`` (its params ``pre``, data ``ds``) into
    folder ``run``; a run already measured (``diagnostics.json`` and ``spectra.json``) is read back."""
    if (run / "diagnostics.json").exists() and (run / "spectra.json").exists():
        sp = read_json(run / "spectra.json")
        return read_json(run / "diagnostics.json"), {k: torch.tensor(v) for k, v in sp.items()}
    run.mkdir(parents=True, exist_ok=True)
    s = ds.slices
    emb = global_embeddings(method, s, max_n=max_n, device=dev)
    result: dict = {"method": pre["method"], "effective_rank": "rankme = RankMe (Garrido et al. 2023) of the "
                    "raw N x D matrix; erank_cov = entropy rank of the covariance of L2-normalised embeddings"}
    spectra = {}
    for key, z in emb.items():
        result[key] = measures(z)
        spectra[key] = spectrum(z)
    # alignment of the two views' projector outputs on one batch
    g = torch.Generator().manual_seed(0)
    x = s.images[torch.randperm(len(s), generator=g)[:256]]
    v = make_views(x, *method.views, g)
    with torch.no_grad():
        e1, e2 = method.embed(v.x1.to(dev)), method.embed(v.x2.to(dev))
    key = "z" if "z" in e1 else "h"
    result[f"alignment_{key}"] = alignment(e1[key].cpu(), e2[key].cpu())
    # pixel embeddings of the full-resolution output map
    pix, pix_lab = dense_embeddings(method.net, s, "out", device=dev)
    result["pixels"] = measures(pix)
    spectra["pixels (out)"] = spectrum(pix)
    figs = {"spectra": vs.plot_spectra(spectra),
            "correlation_h": vs.correlation_heatmap(correlation_matrix(emb["h"]), "correlation of h")}
    hist_file = Path(checkpoint) / "history.json"
    if hist_file.exists():
        figs["rank_history"] = vs.plot_rank_history({pre["method"]: read_json(hist_file)})
    if s.labels is not None:
        case = 0
        imgs, labs = s.volume(case)
        mid = len(imgs) // 2
        with torch.no_grad():
            fmap = method.net.features(imgs[mid:mid + 1].to(dev))["out"][0].cpu()
        clusters, scores = ve.cluster_slice(fmap, labs[mid].numpy(), k=s.n_classes)
        result["clusters"] = scores
        figs["pca_rgb"] = ve.pca_figure(imgs[mid, 0].numpy(), {"out": fmap}, labs[mid].numpy())
        figs["clusters"] = ve.cluster_figure(imgs[mid, 0].numpy(), labs[mid].numpy(), clusters, scores)
        figs["pixel_scatter"] = ve.scatter_2d(pix, pix_lab, s.label_names)
    for name, fig in figs.items():
        save_figure(fig, run, name)
        plt.close(fig)
    write_json(run / "spectra.json", {k: torch.as_tensor(v).tolist() for k, v in spectra.items()})
    write_json(run / "diagnostics.json", result)  # written last: its presence marks a finished run
    return result, spectra

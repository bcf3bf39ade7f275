"""Every figure function runs headless and returns a figure."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from medkit.data.phantom import make_volume  # noqa: E402
from medkit.diagnostics import correlation_matrix, spectrum  # noqa: E402
from medkit.viz import embeddings as ve  # noqa: E402
from medkit.viz import spectra as vs  # noqa: E402
from medkit.viz import volumes as vv  # noqa: E402


def test_volume_figures(monkeypatch):
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)  # no live JupyterLab here: the static cuts
    v = make_volume(0, size=64)
    s, h, w = v.image.shape

    def drawn(ax):  # the arrays an axes shows: the slice, then the label overlay (background masked)
        return [np.ma.getdata(im.get_array()) for im in ax.get_images()]

    def overlay_of(ax, image, label):
        shown = drawn(ax)
        assert len(shown) == 2 and np.array_equal(shown[0], image)
        assert np.array_equal(shown[1], label) and np.array_equal(np.ma.getmask(ax.get_images()[1].get_array()),
                                                                  label == 0)
    fig = vv.side_by_side([("a", v.image[3], v.label[3])])
    raw, labelled = fig.axes
    assert len(drawn(raw)) == 1 and np.array_equal(drawn(raw)[0], v.image[3]) and raw.get_title() == "a"
    overlay_of(labelled, v.image[3], v.label[3])
    assert labelled.get_title() == "a + labels"
    fig = vv.slice_grid([("a", v.image, v.label)])
    assert s == 12  # six evenly spaced slices of 12, base to apex: linspace(0, 11, 6) rounded
    picks = [0, 2, 4, 7, 9, 11]
    assert [ax.get_title() for ax in fig.axes] == ["a s0"] + [f"s{i}" for i in picks[1:]]
    for ax, i in zip(fig.axes, picks, strict=True):
        overlay_of(ax, v.image[i], v.label[i])
    partition = np.arange(s) * 4 // s  # 0 0 0 1 1 1 2 2 2 3 3 3
    fig = vv.partition_strip(v.image, partition, 4)
    assert len(fig.axes) == s and [ax.get_title() for ax in fig.axes] == [f"s{i}\np{p}" for i, p in enumerate(partition)]
    assert all(np.array_equal(drawn(ax)[0], v.image[i]) for i, ax in enumerate(fig.axes))
    frames = [matplotlib.colors.to_hex(ax.spines["top"].get_edgecolor()) for ax in fig.axes]
    assert len(set(frames)) == 4 and all((frames[i] == frames[j]) == (partition[i] == partition[j])
                                         for i in range(s) for j in range(s))
    fig = vv.view_volume(v.image, v.label)
    assert [ax.get_title() for ax in fig.axes] == ["short axis (slice)", "across slices (row)", "across slices (column)"]
    for ax, image, label in zip(fig.axes, (v.image[s // 2], v.image[:, h // 2, :], v.image[:, :, w // 2]),
                                (v.label[s // 2], v.label[:, h // 2, :], v.label[:, :, w // 2]), strict=True):
        overlay_of(ax, image, label)
    plt.close("all")


def test_spectra_figures():
    z = torch.randn(500, 16)
    spectra = {"a": spectrum(z), "b": spectrum(z[:, :4] @ torch.randn(4, 16))}
    ax = vs.plot_spectra(spectra).axes[0]
    assert [line.get_label() for line in ax.get_lines()] == ["a", "b"] and ax.get_yscale() == "log"
    for line, s in zip(ax.get_lines(), spectra.values(), strict=True):  # each spectrum over its largest value
        s = np.maximum(s.numpy(), 1e-12)
        assert np.array_equal(line.get_xdata(), np.arange(1, 17)) and np.allclose(line.get_ydata(), s / s[0])
    assert np.all(ax.get_lines()[1].get_ydata()[4:] < 1e-4)  # rank 4: the cliff after the 4th value
    hist = [{"step": 1, "rankme_h": 3.0}, {"step": 2, "loss": 0.5}, {"step": 3, "rankme_h": 2.0}]
    ax = vs.plot_rank_history({"a": hist, "empty": [{"step": 1, "loss": 1.0}]}).axes[0]
    (line,) = ax.get_lines()  # a history without the key draws no line
    assert line.get_label() == "a" and list(line.get_xdata()) == [1, 3] and list(line.get_ydata()) == [3.0, 2.0]
    assert ax.get_ylabel() == "rankme_h"
    corr = correlation_matrix(z)
    mesh = vs.correlation_heatmap(corr).axes[0].collections[0]
    assert np.allclose(np.asarray(mesh.get_array()).reshape(16, 16), corr.numpy()) and mesh.get_clim() == (-1, 1)
    plt.close("all")


def test_embedding_figures_and_cluster_scores():
    v = make_volume(1, size=48)
    lab = v.label[2]
    # a feature map that encodes the label perfectly: clusters must match it
    fmap = torch.nn.functional.one_hot(torch.as_tensor(lab).long(), 4).permute(2, 0, 1).float()
    fmap = fmap + 0.01 * torch.randn_like(fmap)
    clusters, scores = ve.cluster_slice(fmap, lab, k=4)
    pairs = set(zip(lab.reshape(-1).tolist(), clusters.reshape(-1).tolist()))
    assert len(pairs) == 4 and len({c for _, c in pairs}) == 4  # the clusters are the labels, renamed
    assert scores == pytest.approx({"ari": 1.0, "nmi": 1.0})
    fig = ve.pca_figure(v.image[2], {"f": fmap}, lab)
    rgb, share = ve.pca_components(fmap)
    assert rgb.shape == (48, 48, 3) and np.allclose(fig.axes[1].get_images()[0].get_array(), rgb)
    assert isinstance(fig, Figure) and share[0] >= share[1] >= share[2] > 0
    key = [t.get_text() for t in fig.axes[1].texts]  # the colour key names each channel's component and share
    assert key == [f"PC{i + 1} {share[i]:.0%}" for i in range(3)]
    fig = ve.cluster_figure(v.image[2], lab, clusters, scores)
    assert len(fig.axes) == 2 and np.array_equal(fig.axes[0].get_images()[0].get_array(), v.image[2])
    assert np.array_equal(np.ma.getdata(fig.axes[0].get_images()[1].get_array()), lab)
    assert np.array_equal(fig.axes[1].get_images()[0].get_array(), clusters)
    assert fig.axes[1].get_title() == "k-means: ARI 1.00, NMI 1.00"
    emb = fmap.reshape(4, -1).T
    ax = ve.scatter_2d(emb, torch.as_tensor(lab).reshape(-1), {0: "bg"}).axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["bg", "1", "2", "3"]
    points = [c.get_offsets() for c in ax.collections]  # one scatter per class, every pixel drawn once
    assert [len(p) for p in points] == np.bincount(lab.reshape(-1)).tolist()
    # PCA of the normalised embeddings: centred coordinates whose covariance is diagonal, with the two
    # largest eigenvalues of the embeddings' covariance (numpy, not sklearn) on its diagonal
    unit = emb.double().numpy() / np.linalg.norm(emb.double().numpy(), axis=1, keepdims=True)
    top = np.linalg.eigvalsh(np.cov(unit.T))[::-1][:2]
    xy = np.concatenate(points)
    assert np.allclose(xy.mean(0), 0, atol=1e-9) and np.allclose(np.cov(xy.T), np.diag(top), atol=1e-9)
    other = torch.randn(4, 48, 48, generator=torch.Generator().manual_seed(0))
    point = (20, 30)  # (row, column)

    def cosine(m):  # numpy cosine similarity of fmap's embedding at the point to every pixel of m
        q, m = fmap[:, 20, 30].double().numpy(), m.double().numpy()
        return np.einsum("c,chw->hw", q, m) / (np.linalg.norm(q) * np.linalg.norm(m, axis=0))
    sa, sb = ve.similarity_maps(fmap, point, other)
    assert sa.shape == sb.shape == (48, 48) and sa[20, 30] == pytest.approx(1.0, abs=1e-6)
    assert np.allclose(sa, cosine(fmap), atol=1e-5) and np.allclose(sb, cosine(other), atol=1e-5)
    fig = ve.similarity_figure(v.image[2], v.image[2], fmap, other, point)
    assert len(fig.axes) == 4  # the query, two similarity maps and their colour bar
    (marker,) = fig.axes[0].get_lines()
    assert list(marker.get_xdata()) == [30] and list(marker.get_ydata()) == [20]
    for ax, s in zip(fig.axes[1:3], (cosine(fmap), cosine(other))):
        assert np.allclose(ax.get_images()[0].get_array(), s, atol=1e-5) and ax.get_images()[0].get_clim() == (-1, 1)
    probe = ve.similarity_probe(v.image[2], v.image[2], fmap, fmap)
    row, col = probe.children[0].children  # the sliders start at the centre and span the map
    assert (row.value, row.max, col.value, col.max) == (24, 47, 24, 47)
    plt.close("all")


def test_training_figures():
    from dataclasses import replace

    from medkit.data.augment import AugmentConfig
    from medkit.data.views import ViewConfig, make_views
    from medkit.viz.training import loss_terms_figure, views_figure
    from scipy.ndimage import map_coordinates
    rows, cols = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    x = torch.stack([0.5 + 0.4 * torch.sin(cols / 5 + i) * torch.cos(rows / 7) for i in range(2)])[:, None]  # smooth
    # view 1 is the source itself, view 2 the source rotated about its centre: a point of view 1 is drawn in
    # view 2 at the same distance from the centre, every point of a slice turned by the same angle, and both
    # views show the same intensity there
    still = AugmentConfig(gamma=(1, 1), contrast=(1, 1), brightness=0.0, noise=0.0)
    same = ViewConfig(crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), rotate=0.0, flip=False, intensity=still)
    v = make_views(x, same, replace(same, rotate=30.0), torch.Generator().manual_seed(0))
    axes = np.array(views_figure(x, v).axes).reshape(2, 3)
    centre = (32 - 1) / 2
    for i in range(2):
        for ax, img in zip(axes[i], (x[i, 0], v.x1[i, 0], v.x2[i, 0])):
            assert np.array_equal(ax.get_images()[0].get_array(), img.numpy())
        assert len(axes[i, 1].collections) == 12
        seen = [c.get_offsets()[0] for c in axes[i, 1].collections if len(c.get_facecolor())]  # filled: in view 2
        p1 = np.array(seen) - centre
        p2 = np.array([c.get_offsets()[0] for c in axes[i, 2].collections]) - centre
        assert len(p2) == len(p1) >= 6
        assert np.allclose(np.hypot(*p2.T), np.hypot(*p1.T), atol=1e-3)
        turn = np.angle((p2[:, 0] + 1j * p2[:, 1]) / (p1[:, 0] + 1j * p1[:, 1]), deg=True)
        assert np.allclose(turn, turn[0], atol=1e-3) and 0 < abs(turn[0]) <= 30
        at = [map_coordinates(img.numpy().astype(np.float64), [p[:, 1] + centre, p[:, 0] + centre], order=1,
                              mode="nearest")
              for img, p in ((v.x1[i, 0], p1), (v.x2[i, 0], p2))]
        assert np.allclose(at[0], at[1], atol=0.02)
    hist = [{"step": 1, "loss": 2.0, "global": 1.5}, {"step": 2, "loss": 1.0, "global": 0.8}, {"step": 2, "rankme_h": 3.0}]
    ax = loss_terms_figure(hist).axes[0]
    assert {line.get_label(): (list(line.get_xdata()), list(line.get_ydata())) for line in ax.get_lines()} == {
        "global": ([1, 2], [1.5, 0.8]), "loss": ([1, 2], [2.0, 1.0])}  # the collapse monitor is not a loss term
    plt.close("all")


def test_result_figures():
    import pandas as pd

    from medkit.data.phantom import LABELS, make_phantom
    from medkit.data.slices import make_slices
    from medkit.viz.results import dice_plot, prediction_figure
    t = pd.DataFrame({"k": ["1"] * 4 + ["2"] * 4, "dice_mean": [0.4, 0.6, 0.5, 0.7, 0.6, 0.8, 0.7, 0.95],
                      "setting": ["a", "a", "b", "b"] * 2})
    ax = dice_plot(t).axes[0]
    assert [text.get_text() for text in ax.get_legend().get_texts()] == ["a", "b"]
    assert [text.get_text() for text in ax.get_xticklabels()] == ["1", "2"] and ax.get_ylim() == (0, 1)
    heights = [[bar.get_height() for bar in bars] for bars in ax.containers]  # per setting, per k: the means
    assert np.allclose(heights, [[0.5, 0.7], [0.6, 0.825]])
    sd = np.std([0.4, 0.6], ddof=1)  # error bars: the std of a setting's values at one k
    assert [sorted(line.get_ydata()) for line in ax.lines][0] == pytest.approx([0.5 - sd, 0.5 + sd])
    s = make_slices(make_phantom(1, frames="ed"), LABELS, image_size=32)

    class Bands(torch.nn.Module):  # predicts class c where the intensity lies in [c / 4, (c + 1) / 4)
        def __init__(self):
            super().__init__()
            self.centres = torch.nn.Parameter(torch.tensor([0.125, 0.375, 0.625, 0.875]))

        def forward(self, x):
            return -(x - self.centres[None, :, None, None]).abs()
    imgs, labs = s.volume(0)
    assert len(imgs) == 12  # three inner slices of five evenly spaced over 12: linspace(0, 11, 5)[1:-1] rounded
    axes = np.array(prediction_figure({"bands": Bands()}, s).axes).reshape(3, 2)
    assert [ax.get_title() for ax in axes[0]] == ["truth", "bands"]
    for (truth, pred), i in zip(axes, (3, 6, 8), strict=True):
        expected = np.clip(np.floor(imgs[i, 0].numpy() * 4), 0, 3)
        assert len(np.unique(expected)) >= 3
        for ax, label in ((truth, labs[i].numpy()), (pred, expected)):
            image, overlay = ax.get_images()
            assert np.array_equal(image.get_array(), imgs[i, 0].numpy())
            assert np.array_equal(np.ma.getdata(overlay.get_array()), label)
    plt.close("all")


def test_offline_volume_viewer_redraws_on_every_control(monkeypatch):
    """The ipywidgets viewer's figure follows its slice, plane, label and opacity controls."""
    rng = np.random.default_rng(0)
    image = rng.random((5, 12, 10))
    label = (rng.random((5, 12, 10)) * 4).astype(np.uint8)
    v = vv.VolumeViewer(image, label)

    def shown():
        fig = v.figure()
        arrays = [im.get_array() for im in fig.axes[0].get_images()]
        plt.close(fig)
        return arrays

    first = shown()
    assert len(first) == 2 and np.allclose(first[0], image[2])  # the middle slice with its overlay
    v.index.value = 4
    assert np.allclose(shown()[0], image[4])
    v.plane.value = "across slices (row)"
    assert v.index.max == 11 and v.index.value == 6 and np.allclose(shown()[0], image[:, 6, :])
    v.show_labels.value = False
    assert len(shown()) == 1
    v.show_labels.value, v.opacity.value = True, 0.9
    fig = v.figure()
    assert fig.axes[0].get_images()[1].get_alpha() == 0.9
    plt.close(fig)
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)  # headless: the static cuts, through the middle
    cuts = [im.get_array() for ax in vv.view_volume(image, label).axes for im in ax.get_images()[:1]]
    assert len(cuts) == 3 and all(np.allclose(a, b) for a, b in zip(cuts, (image[2], image[:, 6, :], image[:, :, 5])))


def test_calibration_plot_draws_both_sides_and_the_band():
    import pandas as pd

    from medkit.viz.results import calibration_plot
    table = pd.DataFrame({"k": ["1", "2"], "phantom_dice": [0.5, 0.6], "phantom_sd_combinations": [0.05, 0.04],
                          "acdc_dice": [0.55, 0.65], "acdc_sd_combinations": [0.03, 0.02]})
    ax = calibration_plot(table, "acdc", 0.1).axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["acdc ± 0.10", "phantom", "acdc"]
    band = ax.collections[0].get_paths()[0].vertices[:, 1]
    assert band.min() == pytest.approx(0.45) and band.max() == pytest.approx(0.75)

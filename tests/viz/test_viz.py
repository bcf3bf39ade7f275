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


def test_volume_figures():
    v = make_volume(0, size=64)
    assert isinstance(vv.side_by_side([("a", v.image[3], v.label[3])]), Figure)
    assert isinstance(vv.slice_grid([("a", v.image, v.label)]), Figure)
    assert isinstance(vv.partition_strip(v.image, np.arange(len(v.image)) * 4 // len(v.image), 4), Figure)
    assert isinstance(vv.view_volume(v.image, v.label), Figure)  # no live JupyterLab here


def test_spectra_figures():
    z = torch.randn(500, 16)
    assert isinstance(vs.plot_spectra({"a": spectrum(z), "b": spectrum(z[:, :4] @ torch.randn(4, 16))}), Figure)
    assert isinstance(vs.plot_rank_history({"a": [{"step": 1, "rankme_h": 3.0}, {"step": 2, "rankme_h": 2.0}]}), Figure)
    assert isinstance(vs.correlation_heatmap(correlation_matrix(z)), Figure)


def test_embedding_figures_and_cluster_scores():
    v = make_volume(1, size=48)
    lab = v.label[2]
    # a feature map that encodes the label perfectly: clusters must match it
    fmap = torch.nn.functional.one_hot(torch.as_tensor(lab).long(), 4).permute(2, 0, 1).float()
    fmap = fmap + 0.01 * torch.randn_like(fmap)
    clusters, scores = ve.cluster_slice(fmap, lab, k=4)
    assert scores["ari"] > 0.95 and scores["nmi"] > 0.95
    assert ve.pca_rgb(fmap).shape == (48, 48, 3)
    fig = ve.pca_figure(v.image[2], {"f": fmap}, lab)
    rgb, share = ve.pca_components(fmap)
    assert isinstance(fig, Figure) and np.allclose(rgb, ve.pca_rgb(fmap)) and share[0] >= share[1] >= share[2] > 0
    key = [t.get_text() for t in fig.axes[1].texts]  # the colour key names each channel's component and share
    assert key == [f"PC{i + 1} {share[i]:.0%}" for i in range(3)]
    assert isinstance(ve.cluster_figure(v.image[2], lab, clusters, scores), Figure)
    emb = fmap.reshape(4, -1).T
    assert isinstance(ve.scatter_2d(emb, torch.as_tensor(lab).reshape(-1), {0: "bg"}), Figure)
    sa, sb = ve.similarity_maps(fmap, (24, 24), fmap)
    assert sa[24, 24] > 0.99 and sa.shape == (48, 48)
    assert isinstance(ve.similarity_figure(v.image[2], v.image[2], fmap, fmap, (24, 24)), Figure)
    assert ve.similarity_probe(v.image[2], v.image[2], fmap, fmap) is not None


def test_training_figures():
    from medkit.data.views import ViewConfig, make_views
    from medkit.viz.training import loss_terms_figure, views_figure
    x = torch.rand(2, 1, 32, 32)
    v = make_views(x, ViewConfig(rotate=30), ViewConfig(rotate=30), torch.Generator().manual_seed(0))
    assert isinstance(views_figure(x, v), Figure)
    hist = [{"step": 1, "loss": 2.0, "global": 1.5}, {"step": 2, "loss": 1.0, "global": 0.8}, {"step": 2, "rankme_h": 3.0}]
    assert isinstance(loss_terms_figure(hist), Figure)


def test_result_figures():
    import pandas as pd

    from medkit.data.phantom import LABELS, make_phantom
    from medkit.data.slices import make_slices
    from medkit.models.unet import UNet
    from medkit.viz.results import dice_plot, prediction_figure
    t = pd.DataFrame({"k": ["1", "1", "2", "2"], "dice_mean": [0.5, 0.6, 0.7, 0.8], "setting": ["a", "b", "a", "b"]})
    assert isinstance(dice_plot(t), Figure)
    s = make_slices(make_phantom(1, frames="ed"), LABELS, image_size=32)
    assert isinstance(prediction_figure({"net": UNet(1, 4, (8, 16, 32))}, s), Figure)


def test_offline_volume_viewer_redraws_on_every_control():
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
    assert isinstance(vv.view_volume(image, label), Figure)  # headless: the static cuts


def test_calibration_plot_draws_both_sides_and_the_band():
    import pandas as pd

    from medkit.viz.results import calibration_plot
    table = pd.DataFrame({"k": ["1", "2"], "phantom_dice": [0.5, 0.6], "phantom_sd_combinations": [0.05, 0.04],
                          "acdc_dice": [0.55, 0.65], "acdc_sd_combinations": [0.03, 0.02]})
    ax = calibration_plot(table, "acdc", 0.1).axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["acdc ± 0.10", "phantom", "acdc"]
    band = ax.collections[0].get_paths()[0].vertices[:, 1]
    assert band.min() == pytest.approx(0.45) and band.max() == pytest.approx(0.75)

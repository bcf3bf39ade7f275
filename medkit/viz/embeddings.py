"""Figures of pixel embeddings: PCA -> RGB, k-means clusters against labels, a 2D scatter,
and an interactive cosine-similarity probe (ipywidgets)."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from medkit.viz.volumes import overlay


def pca_components(fmap: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """First three principal components of a (C, H, W) feature map as an RGB image (H, W, 3), each
    stretched between its 1st and 99th percentile, and the share of the map's variance each explains (3,)."""
    c, h, w = fmap.shape
    x = fmap.reshape(c, -1).T.double().numpy()  # (HW, C)
    pca = PCA(n_components=3, random_state=0)
    comp = pca.fit_transform(x)  # (HW, 3)
    lo, hi = np.percentile(comp, [1, 99], axis=0)
    return np.clip((comp - lo) / np.maximum(hi - lo, 1e-8), 0, 1).reshape(h, w, 3), pca.explained_variance_ratio_


def pca_figure(image: np.ndarray, maps: dict[str, torch.Tensor], label: np.ndarray | None = None) -> Figure:
    """The slice (with labels) beside the PCA-RGB image of each named (C, H, W) map; the key under each
    says which component drives red, green and blue and the share of variance it explains."""
    fig, axes = plt.subplots(1, 1 + len(maps), figsize=(3 * (1 + len(maps)), 3.4))
    overlay(axes[0], image, label, title="slice")
    for ax, (name, m) in zip(axes[1:], maps.items()):
        rgb, share = pca_components(m)
        ax.imshow(rgb)
        ax.set_title(f"{name}: PCA -> RGB", fontsize=9)
        ax.set_axis_off()
        for i, colour in enumerate(("red", "green", "blue")):
            ax.text(i / 3, -0.06, f"PC{i + 1} {share[i]:.0%}", color=colour, fontsize=8, transform=ax.transAxes,
                    va="top")
    fig.tight_layout()
    return fig


def cluster_slice(fmap: torch.Tensor, label: np.ndarray, k: int = 4, seed: int = 0) -> tuple[np.ndarray, dict]:
    """k-means of a slice's pixel embeddings (C, H, W); ARI and NMI of the clusters against the
    label map (H, W). Returns the cluster map (H, W) and the scores."""
    c, h, w = fmap.shape
    x = F.normalize(fmap.reshape(c, -1).T, dim=1).double().numpy()
    clusters = KMeans(n_clusters=k, n_init=4, random_state=seed).fit_predict(x)
    truth = np.asarray(label).reshape(-1)
    scores = {"ari": float(adjusted_rand_score(truth, clusters)),
              "nmi": float(normalized_mutual_info_score(truth, clusters))}
    return clusters.reshape(h, w), scores


def cluster_figure(image: np.ndarray, label: np.ndarray, clusters: np.ndarray, scores: dict) -> Figure:
    fig, axes = plt.subplots(1, 2, figsize=(6.2, 3.1))
    overlay(axes[0], image, label, title="slice and labels")
    axes[1].imshow(clusters, cmap="tab10", interpolation="nearest")
    axes[1].set_title(f"k-means: ARI {scores['ari']:.2f}, NMI {scores['nmi']:.2f}", fontsize=9)
    axes[1].set_axis_off()
    fig.tight_layout()
    return fig


def scatter_2d(emb: torch.Tensor, labels: torch.Tensor, names: dict[int, str], max_points: int = 4000,
               seed: int = 0) -> Figure:
    """Pixel embeddings (N, C) projected to 2D by PCA, coloured by class."""
    g = np.random.default_rng(seed)
    pick = g.permutation(len(emb))[:max_points]
    xy = PCA(n_components=2, random_state=seed).fit_transform(F.normalize(emb[pick], dim=1).double().numpy())
    lab = np.asarray(labels[pick])
    fig, ax = plt.subplots(figsize=(4.8, 4.2))
    for c in np.unique(lab):
        ax.scatter(*xy[lab == c].T, s=3, alpha=0.5, label=names.get(int(c), str(c)))
    ax.legend(markerscale=4, fontsize=8)
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    fig.tight_layout()
    return fig


def similarity_maps(fmap_a: torch.Tensor, point: tuple[int, int], fmap_b: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Cosine similarity of the embedding at ``point`` (row, col) of map A (C, H, W) to every
    pixel of map A and of map B."""
    q = F.normalize(fmap_a[:, point[0], point[1]], dim=0)  # (C,)
    sim = [torch.einsum("c,chw->hw", q, F.normalize(m, dim=0)).numpy() for m in (fmap_a, fmap_b)]
    return sim[0], sim[1]


def similarity_figure(img_a: np.ndarray, img_b: np.ndarray, fmap_a: torch.Tensor, fmap_b: torch.Tensor,
                      point: tuple[int, int]) -> Figure:
    """The query point on slice A and the cosine similarity of its embedding to every pixel of A and
    of B, on a common colour scale from -1 (opposite) to 1 (the same direction)."""
    sa, sb = similarity_maps(fmap_a, point, fmap_b)
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.1))
    overlay(axes[0], img_a, None, title=f"query point (row {point[0]}, column {point[1]})")
    axes[0].plot(point[1], point[0], "r+", ms=14, mew=2)
    for ax, s, title in ((axes[1], sa, "similarity, same slice"), (axes[2], sb, "similarity, other patient")):
        shown = ax.imshow(s, cmap="magma", vmin=-1, vmax=1)
        ax.set_title(title, fontsize=9)
        ax.set_axis_off()
    fig.colorbar(shown, ax=axes[1:], fraction=0.046, pad=0.02, label="cosine similarity")
    return fig


def similarity_probe(img_a: np.ndarray, img_b: np.ndarray, fmap_a: torch.Tensor, fmap_b: torch.Tensor):
    """An interactive probe: sliders choose the query point; the figure updates (ipywidgets)."""
    import ipywidgets as widgets
    h, w = fmap_a.shape[-2:]
    out = widgets.Output()
    row = widgets.IntSlider(value=h // 2, min=0, max=h - 1, description="row")
    col = widgets.IntSlider(value=w // 2, min=0, max=w - 1, description="column")

    def draw(*_):
        with out:
            out.clear_output(wait=True)
            from IPython.display import display
            fig = similarity_figure(img_a, img_b, fmap_a, fmap_b, (row.value, col.value))
            display(fig)
            plt.close(fig)

    row.observe(draw, "value")
    col.observe(draw, "value")
    draw()
    return widgets.VBox([widgets.HBox([row, col]), out])

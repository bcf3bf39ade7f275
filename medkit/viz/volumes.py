"""Look at volumes, slices, labels, partitions and splits.

The volume viewer uses itkwidgets in a live JupyterLab session (its viewer loads JavaScript
from public CDNs, so it renders only online) and falls back to matplotlib orthogonal views
under papermill, nbval and nbconvert. A live kernel has ``JPY_SESSION_NAME`` in its
environment; ``MEDKIT_NO_WIDGETS=1`` forces the fallback.
"""
from __future__ import annotations

import os

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

# background transparent; RV, myocardium, LV (and more classes) in distinct colours
LABEL_COLOURS = ["#00000000", "#e41a1c", "#4daf4a", "#377eb8", "#ff7f00", "#984ea3", "#ffff33"]


def label_cmap(n_classes: int) -> ListedColormap:
    return ListedColormap(LABEL_COLOURS[:max(n_classes, 2)])


def overlay(ax: plt.Axes, image: np.ndarray, label: np.ndarray | None = None, n_classes: int = 4,
            alpha: float = 0.45, title: str | None = None) -> None:
    """Draw a grey slice (H, W) with its label map (H, W) on top."""
    ax.imshow(np.asarray(image), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    if label is not None:
        lab = np.ma.masked_where(np.asarray(label) == 0, np.asarray(label))
        ax.imshow(lab, cmap=label_cmap(n_classes), vmin=0, vmax=n_classes - 1, alpha=alpha,
                  interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=9)


def slice_grid(rows: list[tuple[str, np.ndarray, np.ndarray | None]], n_classes: int = 4,
               with_labels: bool = True) -> Figure:
    """One row per (name, images (S, H, W), labels (S, H, W) or None): six evenly spaced
    slices from base to apex, with the label overlay."""
    n = 6
    fig, axes = plt.subplots(len(rows), n, figsize=(2 * n, 2.1 * len(rows)), squeeze=False)
    for r, (name, imgs, labs) in enumerate(rows):
        picks = np.linspace(0, len(imgs) - 1, n).round().astype(int)
        for c, s in enumerate(picks):
            overlay(axes[r, c], imgs[s], labs[s] if (with_labels and labs is not None) else None,
                    n_classes, title=f"{name} s{s}" if c == 0 else f"s{s}")
    fig.tight_layout()
    return fig


def side_by_side(panels: list[tuple[str, np.ndarray, np.ndarray | None]], n_classes: int = 4) -> Figure:
    """Panels of (title, slice (H, W), label (H, W) or None): each shown raw and with overlay."""
    fig, axes = plt.subplots(2, len(panels), figsize=(3.2 * len(panels), 6.4), squeeze=False)
    for c, (title, img, lab) in enumerate(panels):
        overlay(axes[0, c], img, None, n_classes, title=title)
        overlay(axes[1, c], img, lab, n_classes, title=f"{title} + labels")
    fig.tight_layout()
    return fig


def partition_strip(images: np.ndarray, partition: np.ndarray, n_partitions: int) -> Figure:
    """Every slice of one volume, base to apex, framed in its partition's colour."""
    s = len(images)
    fig, axes = plt.subplots(1, s, figsize=(1.3 * s, 1.8), squeeze=False)
    colours = plt.get_cmap("viridis", n_partitions)
    for i in range(s):
        ax = axes[0, i]
        ax.imshow(images[i], cmap="gray", vmin=0, vmax=1)
        ax.set_xticks([]), ax.set_yticks([])
        for sp in ax.spines.values():
            sp.set_edgecolor(colours(int(partition[i])))
            sp.set_linewidth(4)
        ax.set_title(f"s{i}\np{int(partition[i])}", fontsize=8)
    fig.suptitle("slices of one volume, base -> apex; frame colour = partition", fontsize=9)
    fig.tight_layout()
    return fig


def split_bars(split) -> Figure:
    """Patients per part of a split, and the sizes of its labelled combinations."""
    parts = {"test": len(split.test), "validation": len(split.val), "pretraining pool": len(split.pool),
             "labelled candidates": len(split.train)}
    fig, axes = plt.subplots(1, 2, figsize=(9, 2.8))
    axes[0].barh(list(parts), list(parts.values()), color="#377eb8")
    for i, v in enumerate(parts.values()):
        axes[0].text(v, i, f" {v}", va="center")
    axes[0].set_xlabel("patients")
    axes[0].set_title(f"split {split.name}")
    ks = sorted(split.labelled)
    axes[1].bar([str(k) for k in ks], [len(split.labelled[k]) for k in ks], color="#4daf4a")
    axes[1].set_xlabel("labelled volumes k")
    axes[1].set_ylabel("combinations")
    axes[1].set_title("labelled combinations per k")
    fig.tight_layout()
    return fig


def widgets_live() -> bool:
    """True in a live JupyterLab kernel, unless ``MEDKIT_NO_WIDGETS`` is set."""
    return bool(os.environ.get("JPY_SESSION_NAME")) and not os.environ.get("MEDKIT_NO_WIDGETS")


def orthogonal_views(image: np.ndarray, label: np.ndarray | None = None, n_classes: int = 4) -> Figure:
    """Matplotlib fallback of the volume viewer: the middle slice along each axis of (S, H, W)."""
    s, h, w = image.shape
    cuts = [(image[s // 2], None if label is None else label[s // 2], "short axis (slice)"),
            (image[:, h // 2, :], None if label is None else label[:, h // 2, :], "across slices (row)"),
            (image[:, :, w // 2], None if label is None else label[:, :, w // 2], "across slices (column)")]
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.4))
    for ax, (img, lab, title) in zip(axes, cuts):
        overlay(ax, img, lab, n_classes, title=title)
        ax.set_aspect("auto")
    fig.tight_layout()
    return fig


def view_volume(image: np.ndarray, label: np.ndarray | None = None, n_classes: int = 4):
    """itkwidgets viewer in live JupyterLab, else :func:`orthogonal_views` (a Figure)."""
    if widgets_live():
        try:
            from itkwidgets import view
            return view(image=np.ascontiguousarray(image), label_image=None if label is None
                        else np.ascontiguousarray(label.astype(np.uint8)))
        except Exception as e:  # an optional viewer must never break a notebook
            print(f"itkwidgets unavailable ({type(e).__name__}: {e}); showing matplotlib views")
    return orthogonal_views(image, label, n_classes)

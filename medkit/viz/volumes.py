"""Look at volumes, slices, labels, partitions and splits.

The volume viewer (:func:`view_volume`) works offline: in a live JupyterLab kernel it is
:class:`VolumeViewer`, ipywidgets controls (plane, slice, labels, opacity) over a matplotlib figure
that the kernel draws, with no external JavaScript; headless (papermill, nbval, nbconvert) it is a
static figure of three orthogonal cuts. itkwidgets stays an explicit choice (``viewer="itk"``): its
viewer loads JavaScript from public CDNs, so it renders only online, and offline it can hold every
later cell of the kernel. A live kernel has ``JPY_SESSION_NAME`` in its environment;
``MEDKIT_NO_WIDGETS=1`` forces the static figure.
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


PLANES = {"short axis (slice)": 0, "across slices (row)": 1, "across slices (column)": 2}


def cut(volume: np.ndarray, plane: int, index: int) -> np.ndarray:
    """The 2D cut of an (S, H, W) array at ``index`` along axis ``plane``."""
    return np.take(volume, index, axis=plane)


class VolumeViewer:
    """Offline volume viewer: ipywidgets controls over a matplotlib figure drawn by the kernel.

    Args:
        image: (S, H, W) intensities in [0, 1]; label: (S, H, W) label map or None.
        n_classes: label classes, background included.

    Controls: ``plane`` (short axis or one of the two cuts across slices), ``index`` (the cut),
    ``show_labels`` and ``opacity``; any change redraws the figure below them.
    """

    def __init__(self, image: np.ndarray, label: np.ndarray | None = None, n_classes: int = 4) -> None:
        import ipywidgets as w
        self.image, self.label, self.n_classes = np.asarray(image), label, n_classes
        self.plane = w.Dropdown(options=list(PLANES), value="short axis (slice)", description="plane")
        self.index = w.IntSlider(value=self.image.shape[0] // 2, min=0, max=self.image.shape[0] - 1,
                                 description="slice", continuous_update=False)
        self.show_labels = w.Checkbox(value=label is not None, disabled=label is None, description="labels")
        self.opacity = w.FloatSlider(value=0.45, min=0.0, max=1.0, step=0.05, description="opacity",
                                     continuous_update=False)
        self.out = w.Output()
        self.plane.observe(self._on_plane, names="value")
        for control in (self.index, self.show_labels, self.opacity):
            control.observe(self._draw, names="value")
        self.widget = w.VBox([w.HBox([self.plane, self.index]), w.HBox([self.show_labels, self.opacity]), self.out])
        self._draw()

    def figure(self) -> Figure:
        """The current cut with its label overlay, as a new figure."""
        axis = PLANES[self.plane.value]
        img = cut(self.image, axis, self.index.value)
        lab = cut(self.label, axis, self.index.value) if self.label is not None and self.show_labels.value else None
        fig, ax = plt.subplots(figsize=(4.2, 4.2))
        overlay(ax, img, lab, self.n_classes, alpha=self.opacity.value,
                title=f"{self.plane.value}: {self.index.value} of {self.image.shape[axis] - 1}")
        ax.set_aspect("auto" if axis else "equal")
        fig.tight_layout()
        return fig

    def _on_plane(self, _=None) -> None:
        size = self.image.shape[PLANES[self.plane.value]]
        with self.index.hold_trait_notifications():
            self.index.max = size - 1
            self.index.value = size // 2
        self._draw()

    def _draw(self, _=None) -> None:
        from IPython import get_ipython
        from IPython.display import display
        if get_ipython() is None:  # no kernel to draw into (a script or a test)
            return
        with self.out:
            self.out.clear_output(wait=True)
            fig = self.figure()
            display(fig)
            plt.close(fig)

    def _ipython_display_(self) -> None:
        from IPython.display import display
        display(self.widget)


def view_volume(image: np.ndarray, label: np.ndarray | None = None, n_classes: int = 4, viewer: str = "widgets"):
    """The volume viewer: :class:`VolumeViewer` in a live kernel (``viewer="widgets"``, offline),
    itkwidgets when asked for (``viewer="itk"``, needs internet), else :func:`orthogonal_views`."""
    if viewer not in ("widgets", "itk", "static"):
        raise ValueError(f"viewer must be 'widgets', 'itk' or 'static', got {viewer!r}")
    if widgets_live() and viewer == "widgets":
        return VolumeViewer(image, label, n_classes)
    if widgets_live() and viewer == "itk":
        try:
            from itkwidgets import view
            return view(image=np.ascontiguousarray(image), label_image=None if label is None
                        else np.ascontiguousarray(label.astype(np.uint8)))
        except Exception as e:  # an optional viewer must never break a notebook
            print(f"itkwidgets unavailable ({type(e).__name__}: {e}); showing matplotlib views")
    return orthogonal_views(image, label, n_classes)

"""Figures of pretraining: the two views with corresponding points, and the loss terms."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from medkit.data.views import Views, inside, map_points


def views_figure(source: torch.Tensor, views: Views, n_points: int = 12, n_show: int = 3, seed: int = 0) -> Figure:
    """Source slices and their two views; the same coloured marker is the same anatomical point.

    Points are drawn in view 1 and mapped to view 2 through the views' affine maps; a hollow
    marker in view 1 is a point that view 2 does not see (it would be masked by dense losses).
    """
    g = torch.Generator().manual_seed(seed)
    b = min(n_show, source.shape[0])
    p1 = (torch.rand(b, n_points, 2, generator=g) * 1.8 - 0.9)  # normalised view-1 points
    p2 = map_points(p1, views.theta1[:b].cpu(), views.theta2[:b].cpu())
    seen = inside(p2)
    fig, axes = plt.subplots(b, 3, figsize=(8.4, 2.9 * b), squeeze=False)
    colours = plt.get_cmap("tab20")(np.arange(n_points) % 20)
    h, w = views.x1.shape[-2:]
    to_px = lambda p: ((p[..., 0] + 1) * w / 2 - 0.5, (p[..., 1] + 1) * h / 2 - 0.5)  # noqa: E731
    for i in range(b):
        for ax, img, title in zip(axes[i], (source[i, 0], views.x1[i, 0], views.x2[i, 0]),
                                  ("source", "view 1", "view 2")):
            ax.imshow(img.cpu(), cmap="gray", vmin=0, vmax=1)
            ax.set_title(title, fontsize=9)
            ax.set_axis_off()
        x1, y1 = to_px(p1[i])
        x2, y2 = to_px(p2[i])
        for j in range(n_points):
            axes[i, 1].scatter(x1[j], y1[j], s=30, facecolors=colours[j] if seen[i, j] else "none",
                               edgecolors=colours[j], linewidths=1.5)
            if seen[i, j]:
                axes[i, 2].scatter(x2[j], y2[j], s=30, color=colours[j])
    fig.tight_layout()
    return fig


def loss_terms_figure(history: list[dict], skip: tuple[str, ...] = ("step", "lr")) -> Figure:
    """Every loss term recorded in a run history against the step."""
    keys = sorted({k for e in history for k in e if k not in skip and not k.startswith(("rankme", "erank", "collapsed", "val_"))})
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for k in keys:
        pts = [(e["step"], e[k]) for e in history if k in e]
        ax.plot(*zip(*pts), label=k)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig

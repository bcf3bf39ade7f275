"""Figures of collapse: singular-value spectra, effective rank over training, correlations."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
import torch
from matplotlib.figure import Figure


def plot_spectra(spectra: dict[str, torch.Tensor], title: str = "singular values of the embedding covariance") -> Figure:
    """Log-scale spectra of several runs or embeddings ({name: (D,) descending}); a collapsed
    embedding shows a cliff where the values drop towards zero."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, s in spectra.items():
        s = np.asarray(torch.as_tensor(s).float().clamp(min=1e-12))
        ax.plot(np.arange(1, len(s) + 1), s / s[0], label=name)
    ax.set_yscale("log")
    ax.set_xlabel("singular value rank")
    ax.set_ylabel("singular value / largest (log)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_rank_history(histories: dict[str, list[dict]], key: str = "rankme_h") -> Figure:
    """Effective rank over training, from run histories (entries with ``key``)."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, hist in histories.items():
        pts = [(e["step"], e[key]) for e in hist if key in e]
        if pts:
            ax.plot(*zip(*pts), marker="o", ms=3, label=name)
    ax.set_xlabel("step")
    ax.set_ylabel(key)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def correlation_heatmap(corr: torch.Tensor, title: str = "feature correlation") -> Figure:
    """Seaborn heat map of a (D, D) correlation matrix (identity = decorrelated features)."""
    fig, ax = plt.subplots(figsize=(4.6, 4))
    sns.heatmap(np.asarray(corr), vmin=-1, vmax=1, cmap="vlag", square=True, cbar=True, ax=ax,
                xticklabels=False, yticklabels=False)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig

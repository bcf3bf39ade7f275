"""Figures of few-label results: Dice per label budget and protocol, predictions beside the truth."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch
from matplotlib.figure import Figure
from torch import nn

from medkit.data.slices import SliceSet
from medkit.viz.volumes import overlay


def _dice_axes(fig: Figure, ax: plt.Axes) -> Figure:
    """Dice against the label budget: axis labels, the [0, 1] range and the legend."""
    ax.set_xlabel("labelled volumes k")
    ax.set_ylabel("3D Dice (mean of classes)")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def dice_plot(table: pd.DataFrame, hue: str = "setting") -> Figure:
    """Mean Dice per test volume against the label budget k, one colour per ``hue`` value; the
    bars are means and the error bars the spread (std) over test volumes and combinations."""
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    sns.barplot(data=table, x="k", y="dice_mean", hue=hue, errorbar="sd", ax=ax)
    return _dice_axes(fig, ax)


@torch.no_grad()
def prediction_figure(models: dict[str, nn.Module], data: SliceSet, case: int = 0, n_slices: int = 3) -> Figure:
    """Rows: slices of one test volume; columns: the truth, then each model's prediction."""
    imgs, labs = data.volume(case)
    picks = torch.linspace(0, len(imgs) - 1, n_slices + 2).round().long()[1:-1]
    fig, axes = plt.subplots(n_slices, 1 + len(models), figsize=(2.6 * (1 + len(models)), 2.6 * n_slices),
                             squeeze=False)
    for r, s in enumerate(picks.tolist()):
        overlay(axes[r, 0], imgs[s, 0].numpy(), labs[s].numpy(), data.n_classes,
                title="truth" if r == 0 else None)
        for c, (name, model) in enumerate(models.items(), start=1):
            model.eval()
            dev = next(model.parameters()).device
            pred = model(imgs[s:s + 1].to(dev)).argmax(1)[0].cpu().numpy()
            overlay(axes[r, c], imgs[s, 0].numpy(), pred, data.n_classes, title=name if r == 0 else None)
    fig.tight_layout()
    return fig


def paired_plot(pairs: pd.DataFrame, summary: pd.DataFrame, metric: str = "dice_mean", title: str = "") -> Figure:
    """Paired differences B - A, one panel per label budget k and one column per comparison: grey
    dots are the (combination, seed) pairs, the black marker their mean with its 95 % bootstrap
    interval; the dashed line is no difference. ``pairs`` and ``summary`` as
    :func:`medkit.eval.paired.compare_settings` returns them (with a ``comparison`` column)."""
    ks = list(dict.fromkeys(pairs["k"]))
    comps = list(dict.fromkeys(pairs["comparison"]))
    fig, axes = plt.subplots(1, len(ks), figsize=(1.6 + 1.9 * len(comps) * len(ks), 3.6), squeeze=False,
                             sharey=True)
    for ax, k in zip(axes[0], ks):
        for i, comp in enumerate(comps):
            d = pairs[(pairs["k"] == k) & (pairs["comparison"] == comp)][f"{metric}|diff"]
            s = summary[(summary["k"] == k) & (summary["comparison"] == comp) & (summary["metric"] == metric)]
            jitter = np.linspace(-0.06, 0.06, len(d)) if len(d) > 1 else np.zeros(len(d))
            ax.scatter(i + jitter, d, s=12, color="0.6", zorder=2)
            if len(s):
                r = s.iloc[0]
                err = [[r["mean_diff"] - r["ci_low"]], [r["ci_high"] - r["mean_diff"]]]
                ax.errorbar(i + 0.25, r["mean_diff"], yerr=err, fmt="o", color="k", capsize=4, zorder=3)
        ax.axhline(0, ls="--", color="tab:red", lw=1)
        ax.set_xticks(range(len(comps)), comps, rotation=20, ha="right", fontsize=8)
        ax.set_title(f"k = {k}")
    axes[0][0].set_ylabel(f"paired difference of {metric.replace('dice_mean', 'mean Dice')}")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def calibration_plot(table: pd.DataFrame, real: str, tolerance: float) -> Figure:
    """The supervised baseline's mean Dice against k on the phantom and on ``real`` (error bars:
    std over labelled combinations), with the band ``real +- tolerance`` the phantom should stay in.
    ``table`` as :func:`medkit.workflows.calibrate.calibration_table` returns it."""
    k = table["k"].astype(str).tolist()
    x = np.arange(len(k))
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    ax.fill_between(x, table[f"{real}_dice"] - tolerance, table[f"{real}_dice"] + tolerance, color="0.9",
                    label=f"{real} ± {tolerance:.2f}")
    for side, dx, colour in (("phantom", -0.05, "tab:orange"), (real, 0.05, "tab:blue")):
        ax.errorbar(x + dx, table[f"{side}_dice"], yerr=table[f"{side}_sd_combinations"], fmt="o-", capsize=4,
                    color=colour, label=side)
    ax.set_xticks(x, k)
    return _dice_axes(fig, ax)

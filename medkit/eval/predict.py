"""Predict whole volumes slice by slice and score them at native resolution."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from medkit.data.slices import SliceSet
from medkit.eval.metrics import dice_per_class, hd95_per_class


@torch.no_grad()
def predict_case(model: nn.Module, data: SliceSet, case: int, device: torch.device,
                 batch_size: int = 32) -> np.ndarray:
    """Label map (S, H, W) of one case at its native resolution."""
    model.eval()
    images, _ = data.volume(case)  # (S, 1, h, w)
    logits = torch.cat([model(images[i:i + batch_size].to(device)).float().cpu()
                        for i in range(0, len(images), batch_size)])  # (S, C, h, w)
    return data.to_native(logits, case).argmax(1).numpy().astype(np.uint8)  # (S, H, W)


def mean_dice(model: nn.Module, data: SliceSet, device: torch.device | str = "cpu") -> float:
    """Mean over cases of the class-mean 3D Dice: the validation score of model selection."""
    return float(np.mean([r["dice_mean"] for r in evaluate(model, data, device, hd95=False)]))


def evaluate(model: nn.Module, data: SliceSet, device: torch.device | str = "cpu",
             hd95: bool = True) -> list[dict]:
    """Score every case of ``data``: one row per case with Dice (and HD95) per class.

    HD95 is in voxels of the native grid (ACDC as shipped here has no spacing; see docs/data.md).

    Returns:
        rows like ``{"case": ..., "dice_mean": ..., "dice/<class name>": ..., "hd95/<class>": ...}``.
    """
    device = torch.device(device)
    if data.native_labels is None:
        raise ValueError("evaluate() needs a labelled SliceSet")
    names = [data.label_names.get(c, f"class {c}") for c in range(1, data.n_classes)]
    rows = []
    for case in range(len(data.cases)):
        pred = predict_case(model, data, case, device)
        truth = data.native_labels[case]
        d = dice_per_class(pred, truth, data.n_classes)
        row = {"case": data.cases[case], "dice_mean": float(np.mean(d))}
        row.update({f"dice/{n}": float(v) for n, v in zip(names, d)})
        if hd95:
            h = hd95_per_class(pred, truth, data.n_classes)
            row["hd95_mean"] = float(np.nanmean(h)) if np.isfinite(h).any() else float("nan")
            row.update({f"hd95/{n}": float(v) for n, v in zip(names, h)})
        rows.append(row)
    return rows

"""Per-class segmentation metrics on whole 3D volumes, computed with MONAI.

Dice_c = 2 |P_c & G_c| / (|P_c| + |G_c|) per foreground class c over the whole volume
(background excluded); a class absent from both prediction and truth scores 1. HD95 is
the 95th percentile of the symmetric surface distance (MONAI ``compute_hausdorff_distance``),
in units of the given spacing; it is NaN where the class is missing from either side.
"""
from __future__ import annotations

import warnings

import numpy as np
import torch
from monai.metrics import compute_dice, compute_hausdorff_distance
from monai.networks.utils import one_hot


def _onehot(label: np.ndarray | torch.Tensor, n_classes: int) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(label), dtype=torch.long)[None, None]  # (1, 1, S, H, W)
    return one_hot(t, n_classes, dim=1)  # (1, C, S, H, W)


def dice_per_class(pred: np.ndarray | torch.Tensor, truth: np.ndarray | torch.Tensor,
                   n_classes: int) -> np.ndarray:
    """Dice per foreground class, shape (n_classes - 1,), for label maps (S, H, W).

    Example:
        >>> dice_per_class(np.array([[[1, 1, 0]]]), np.array([[[1, 0, 0]]]), 2)
        array([0.6666667], dtype=float32)
    """
    if np.shape(pred) != np.shape(truth):
        raise ValueError(f"prediction shape {np.shape(pred)} != truth shape {np.shape(truth)}")
    d = compute_dice(_onehot(pred, n_classes), _onehot(truth, n_classes),
                     include_background=False, ignore_empty=False)  # (1, C-1)
    return d[0].numpy().astype(np.float32)


def hd95_per_class(pred: np.ndarray | torch.Tensor, truth: np.ndarray | torch.Tensor, n_classes: int,
                   spacing: tuple[float, ...] | None = None) -> np.ndarray:
    """95th-percentile Hausdorff distance per foreground class, (n_classes - 1,); NaN if a side is empty.

    Args:
        spacing: voxel size along (S, H, W); None means voxels.
    """
    with warnings.catch_warnings():  # MONAI warns for empty classes; we report NaN for them
        warnings.simplefilter("ignore")
        h = compute_hausdorff_distance(_onehot(pred, n_classes), _onehot(truth, n_classes),
                                       include_background=False, percentile=95, spacing=spacing)
    h = h[0].numpy().astype(np.float32)
    h[~np.isfinite(h)] = np.nan
    return h

"""One collapse monitor: the measures of embedding matrices, shared by the monitor that pretraining
records in its history and by ``diagnose``.

:func:`measures` gives every scalar of one (N, D) matrix; :func:`monitor` the summary that a
training records at each check, for each embedding a method returns (global ``h`` and ``z``,
pixel maps sampled to a fixed set of pixels).
"""
from __future__ import annotations

import torch

from medkit.diagnostics.rank import (collapsed_fraction, dead_fraction, effective_rank_cov, normalized_std, rankme,
                                     uniformity)

# what a training records at each check, by the key prefix of its history entries
MONITORED = {"rankme": rankme, "erank_cov": effective_rank_cov, "collapsed": collapsed_fraction}


def measures(z: torch.Tensor) -> dict[str, float]:
    """Every scalar collapse measure of an (N, D) embedding matrix: RankMe, covariance effective
    rank, collapsed and dead shares of dimensions, std of the L2-normalised embeddings, and
    uniformity (on at most 2000 rows: it is quadratic in N)."""
    return {"n": int(z.shape[0]), "d": int(z.shape[1]), "rankme": rankme(z), "erank_cov": effective_rank_cov(z),
            "collapsed_fraction": collapsed_fraction(z), "dead_fraction": dead_fraction(z),
            "normalized_std": normalized_std(z), "uniformity": uniformity(z[:2000])}


def pixel_sample(fmap: torch.Tensor, max_pixels: int, seed: int = 0) -> torch.Tensor:
    """A fixed random sample of the pixel embeddings of a map: (B, C, H, W) -> (min(BHW, max_pixels), C)."""
    flat = fmap.permute(0, 2, 3, 1).reshape(-1, fmap.shape[1])  # (B*H*W, C)
    return flat[torch.randperm(len(flat), generator=torch.Generator().manual_seed(seed))[:max_pixels]]


def monitor(embeddings: dict[str, torch.Tensor], max_pixels: int = 4096) -> dict[str, float]:
    """``{"<measure>_<key>": value}`` of :data:`MONITORED` for each embedding of a method's
    ``embed`` (global (B, D) or dense (B, C, H, W), the latter on a fixed sample of pixels)."""
    out = {}
    for key, e in embeddings.items():
        e = e.float().cpu()
        e = pixel_sample(e, max_pixels) if e.ndim == 4 else e  # (N, D)
        out.update({f"{name}_{key}": fn(e) for name, fn in MONITORED.items()})
    return out

"""Embeddings of a dataset under a pretrained method: global (h, z) and dense (pixels of a map).

Labels may be returned beside dense embeddings to colour or stratify an analysis; they are
never used for training.
"""
from __future__ import annotations

import torch
from torch import nn

from medkit.data.slices import SliceSet


@torch.no_grad()
def global_embeddings(method: nn.Module, data: SliceSet, max_n: int = 2048, batch_size: int = 64,
                      device: torch.device | str = "cpu", seed: int = 0) -> dict[str, torch.Tensor]:
    """``method.embed`` over up to ``max_n`` slices: {"h": (N, D), "z": (N, D')} (CPU tensors)."""
    method.eval().to(device)
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(data), generator=g)[:max_n]
    out: dict[str, list[torch.Tensor]] = {}
    for i in range(0, len(idx), batch_size):
        emb = method.embed(data.images[idx[i:i + batch_size]].to(device))
        for k in ("h", "z"):
            if k in emb:
                out.setdefault(k, []).append(emb[k].float().cpu())
    return {k: torch.cat(v) for k, v in out.items()}


@torch.no_grad()
def dense_embeddings(net: nn.Module, data: SliceSet, layer: str = "out", pixels_per_slice: int = 64,
                     max_slices: int = 256, batch_size: int = 32, device: torch.device | str = "cpu",
                     seed: int = 0) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Pixel embeddings (N, C) sampled from map ``layer`` of a U-Net, with their labels (N,).

    Maps coarser than the image are upsampled (bilinear) to the image size before sampling, so
    that each sampled pixel has a label. N = slices x ``pixels_per_slice``; keep N well above C.
    """
    net.eval().to(device)
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(data), generator=g)[:max_slices]
    embs, labs = [], []
    for i in range(0, len(idx), batch_size):
        sel = idx[i:i + batch_size]
        x = data.images[sel].to(device)
        fmap = net.features(x)[layer]
        if fmap.shape[-2:] != x.shape[-2:]:
            fmap = torch.nn.functional.interpolate(fmap, size=x.shape[-2:], mode="bilinear", align_corners=False)
        b, c, h, w = fmap.shape
        pix = torch.randint(h * w, (b, pixels_per_slice), generator=g)  # (B, P)
        flat = fmap.flatten(2).cpu()  # (B, C, HW)
        embs.append(torch.gather(flat, 2, pix[:, None, :].expand(b, c, -1)).transpose(1, 2).reshape(-1, c))
        if data.labels is not None:
            labs.append(torch.gather(data.labels[sel].flatten(1), 1, pix).reshape(-1))
    return torch.cat(embs).float(), (torch.cat(labs) if labs else None)

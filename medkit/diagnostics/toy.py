"""A toy that reproduces dimensional collapse in seconds (after Jing et al., ICLR 2022).

Data x ~ N(0, I_n); a linear encoder z = W x (W: d x n) is trained with NT-Xent between two
views x + e1 and x + e2, where the augmentation noise e has std ``noise`` on the last k input
dimensions and a small std elsewhere. Strong augmentation on k dimensions makes them useless
for telling samples apart, the encoder learns to ignore them, and the embedding covariance
loses about k of its d singular values: dimensional collapse, controlled by one knob.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from medkit.diagnostics.rank import collapsed_fraction, effective_rank_cov, rankme
from medkit.diagnostics.spectrum import spectrum
from medkit.errors import MedkitError
from medkit.losses.infonce import nt_xent


@dataclass(frozen=True)
class ToyResult:
    """Spectrum (d,) of the trained embeddings, effective ranks and the loss history."""

    noise: float
    spectrum: torch.Tensor
    rankme: float
    erank_cov: float
    collapsed: float
    losses: list[float]


@dataclass(frozen=True)
class ToyConfig:
    """The linear toy and its training (defaults: collapse of about k of d dimensions in seconds).

    Attributes:
        n: input dimension.
        d: embedding dimension.
        k: noisy input dimensions (the last k of n).
        steps: SGD steps.
        batch: samples per step.
        lr: SGD learning rate.
        temperature: of NT-Xent.
    """

    n: int = 16
    d: int = 16
    k: int = 8
    steps: int = 300
    batch: int = 256
    lr: float = 0.05
    temperature: float = 0.5

    def __post_init__(self) -> None:
        for name in ("n", "d", "steps"):
            if getattr(self, name) < 1:
                raise MedkitError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not 0 <= self.k <= self.n:
            raise MedkitError(f"k must be between 0 and n = {self.n}, got {self.k}")
        if self.batch < 2:
            raise MedkitError(f"batch must be at least 2 (NT-Xent needs negatives), got {self.batch}")
        for name in ("lr", "temperature"):
            if not getattr(self, name) > 0:
                raise MedkitError(f"{name} must be a positive number, got {getattr(self, name)}")


def toy_collapse(noise: float, cfg: ToyConfig = ToyConfig(), seed: int = 0) -> ToyResult:
    """Train the linear toy with augmentation strength ``noise`` on ``cfg.k`` of ``cfg.n`` input
    dimensions.

    Args:
        noise: std of the augmentation noise on the last k input dimensions (the knob); the
            other dimensions get 0.1.
        cfg: dimensions and SGD schedule of the NT-Xent training (:class:`ToyConfig`).
        seed: seeds data, noise and initialisation.

    Returns:
        a :class:`ToyResult`: healthy (small ``noise``) has ``erank_cov`` near d and ``collapsed``
        near 0; with ``noise`` well above 1, about k of d singular values vanish
        (``collapsed`` near k / d).

    Example:
        >>> low, high = toy_collapse(0.1), toy_collapse(3.0)  # high.collapsed >= 0.4
    """
    n, d, k, steps, batch = cfg.n, cfg.d, cfg.k, cfg.steps, cfg.batch
    g = torch.Generator().manual_seed(seed)
    w = (torch.randn(d, n, generator=g) / n**0.5).requires_grad_(True)
    opt = torch.optim.SGD([w], lr=cfg.lr)
    std = torch.full((n,), 0.1)
    std[n - k:] = noise
    losses = []
    for _ in range(steps):
        x = torch.randn(batch, n, generator=g)  # (B, n)
        x1 = x + torch.randn(batch, n, generator=g) * std
        x2 = x + torch.randn(batch, n, generator=g) * std
        loss = nt_xent(x1 @ w.T, x2 @ w.T, cfg.temperature)  # (B, d) embeddings
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    with torch.no_grad():
        z = torch.randn(4096, n, generator=g) @ w.T  # embeddings of clean data, N >> d
    return ToyResult(noise, spectrum(z), rankme(z), effective_rank_cov(z), collapsed_fraction(z, 1e-3), losses)

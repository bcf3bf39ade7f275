"""Feature decorrelation before the projector: ZCA whitening, and IterNorm as an option.

Hassanpour et al. (2024) whiten the backbone features h (N, D) before the projector:

    x -> Sigma^{-1/2} (x - mu),   Sigma^{-1/2} = U diag(1 / sqrt(lambda + eps)) U^T,

so that the whitened batch has identity covariance (ZCA: the whitening closest to the input).
In training, mu and Sigma come from the batch (gradients flow through the eigendecomposition);
running averages serve in evaluation, as in BatchNorm. The authors' code uses IterNorm (Huang
et al., CVPR 2019): Newton iterations P_{k+1} = (3 P_k - P_k^3 Sigma_N) / 2, T = 5, on the
trace-normalised covariance Sigma_N, which avoids the eigendecomposition (and its unstable
gradients when eigenvalues are close).

Whitening needs more samples than dimensions: use ``groups`` (whiten D / G channels at a time)
when the batch is small, as IterNorm's and decorrelated batch norm's code does; a batch no larger
than the group size is refused.
"""
from __future__ import annotations

import torch
from torch import nn

from medkit.comm import gather


class InvSqrtSym(torch.autograd.Function):
    """A^{-1/2} of symmetric positive matrices (..., g, g) by eigendecomposition, with a gradient
    that stays finite when eigenvalues repeat.

    With A = U diag(lambda) U^T and f(x) = x^{-1/2}, the Daleckii-Krein formula gives

        dL/dA = U [ (U^T sym(G) U) o K ] U^T,   K_ij = (f(l_i) - f(l_j)) / (l_i - l_j),  K_ii = f'(l_i),

    and for l_i ~ l_j the divided difference is replaced by its limit f'((l_i + l_j) / 2). Autograd
    through ``torch.linalg.eigh`` instead divides by l_i - l_j and returns NaN as soon as two
    eigenvalues coincide (a dead channel, a rank-deficient batch), which stops training.
    """

    @staticmethod
    def forward(ctx, a: torch.Tensor, eps: float) -> torch.Tensor:
        lam, u = torch.linalg.eigh(a)  # (..., g), (..., g, g)
        lam = lam.clamp(min=eps)
        f = lam.rsqrt()
        ctx.save_for_backward(lam, u, f)
        return u @ torch.diag_embed(f) @ u.transpose(-1, -2)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        lam, u, f = ctx.saved_tensors
        dl = lam[..., :, None] - lam[..., None, :]  # (..., g, g)
        mid = 0.5 * (lam[..., :, None] + lam[..., None, :])
        close = dl.abs() <= 1e-7 * mid
        k = torch.where(close, -0.5 * mid.pow(-1.5),
                        (f[..., :, None] - f[..., None, :]) / torch.where(close, torch.ones_like(dl), dl))
        inner = u.transpose(-1, -2) @ (0.5 * (grad + grad.transpose(-1, -2))) @ u
        return u @ (inner * k) @ u.transpose(-1, -2), None


class Whitening(nn.Module):
    """Group-wise ZCA or IterNorm whitening of (N, D) features.

    Args:
        dim: D.
        groups: channels are whitened in ``groups`` independent groups of D / groups.
        method: ``"zca"`` (eigendecomposition) or ``"iternorm"`` (Newton, ``iterations`` steps).
        eps: added to the covariance diagonal.
        momentum: of the running mean and covariance.
        gather_distributed: in a process group, estimate the mean and covariance on the global
            batch (every process's features); otherwise on this process's batch only.

    Example:
        >>> w = Whitening(8, groups=1)
        >>> y = w(torch.randn(256, 8) @ torch.randn(8, 8))
        >>> bool(torch.allclose(torch.cov(y.T), torch.eye(8), atol=1e-2))
        True
    """

    def __init__(self, dim: int, groups: int = 1, method: str = "zca", eps: float = 1e-4,
                 momentum: float = 0.1, iterations: int = 5, gather_distributed: bool = False) -> None:
        super().__init__()
        if dim % groups:
            raise ValueError(f"Whitening: dim {dim} is not divisible by groups {groups}")
        if method not in ("zca", "iternorm"):
            raise ValueError(f"Whitening: method must be 'zca' or 'iternorm', got {method!r}")
        self.dim, self.groups, self.method = dim, groups, method
        self.eps, self.momentum, self.iterations = eps, momentum, iterations
        self.gather_distributed = gather_distributed
        g = dim // groups
        self.register_buffer("running_mean", torch.zeros(groups, g))
        self.register_buffer("running_whiten", torch.eye(g).repeat(groups, 1, 1))

    def _whitening_matrix(self, cov: torch.Tensor) -> torch.Tensor:
        """Sigma^{-1/2} for covariances (G, g, g)."""
        g = cov.shape[-1]
        cov = cov + self.eps * torch.eye(g, device=cov.device, dtype=cov.dtype)
        if self.method == "zca":
            return InvSqrtSym.apply(cov.double(), self.eps).to(cov.dtype)
        trace = cov.diagonal(dim1=1, dim2=2).sum(-1)[:, None, None]  # (G, 1, 1)
        cov_n = cov / trace
        p = torch.eye(g, device=cov.device, dtype=cov.dtype).expand_as(cov)
        for _ in range(self.iterations):
            p = 0.5 * (3 * p - torch.linalg.matrix_power(p, 3) @ cov_n)
        return p / trace.sqrt()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"Whitening: expected (N, {self.dim}), got {tuple(x.shape)}")
        n = x.shape[0]
        xg = x.view(n, self.groups, -1).transpose(0, 1).float()  # (G, N, g)
        if self.training:
            xa = gather(xg.transpose(0, 1)).transpose(0, 1) if self.gather_distributed else xg  # (G, N_all, g)
            if xa.shape[1] <= self.dim // self.groups:
                raise ValueError(f"Whitening: a batch of {xa.shape[1]} cannot whiten groups of {self.dim // self.groups} "
                                 f"channels (the covariance would be singular); use a batch larger than "
                                 f"the group size, or more groups")
            mean = xa.mean(1)  # (G, g)
            xc = xg - mean[:, None]
            xac = xa - mean[:, None]
            cov = xac.transpose(1, 2) @ xac / (xa.shape[1] - 1)  # (G, g, g)
            w = self._whitening_matrix(cov)
            with torch.no_grad():
                self.running_mean.lerp_(mean.detach(), self.momentum)
                self.running_whiten.lerp_(w.detach(), self.momentum)
        else:
            xc = xg - self.running_mean[:, None]
            w = self.running_whiten
        out = xc @ w  # (G, N, g); w is symmetric
        return out.transpose(0, 1).reshape(n, self.dim).to(x.dtype)

from __future__ import annotations

import pytest
import torch

from medkit.models.heads import projection_conv, projection_mlp
from medkit.models.momentum import Queue, ema_update, momentum_copy
from medkit.models.whitening import Whitening


@pytest.mark.parametrize("method", ["zca", "iternorm"])
def test_whitening_gives_identity_covariance(method):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(512, 16, generator=g) @ torch.randn(16, 16, generator=g) + 3.0  # correlated
    w = Whitening(16, groups=2, method=method, iterations=10)
    y = w(x)
    for grp in y.view(512, 2, 8).unbind(1):
        cov = torch.cov(grp.T)
        tol = 1e-2 if method == "zca" else 0.15  # IterNorm converges approximately in T steps
        assert torch.allclose(cov, torch.eye(8), atol=tol), (cov - torch.eye(8)).abs().max()
    assert y.mean(0).abs().max() < 1e-4


def test_zca_is_the_symmetric_whitening_and_running_stats():
    x = torch.randn(1000, 4) @ torch.tensor([[2.0, 0.5, 0, 0], [0, 1, 0, 0], [0, 0, 3, 1], [0, 0, 0, 1]])
    w = Whitening(4, momentum=1.0)
    y = w(x)
    # ZCA keeps the features as close to the input as whitening allows: W is symmetric positive
    wm = w.running_whiten[0]
    torch.testing.assert_close(wm, wm.T)
    assert torch.linalg.eigvalsh(wm).min() > 0
    w.eval()  # evaluation uses the running statistics (momentum 1: those of the last batch)
    torch.testing.assert_close(w(x), y, atol=1e-4, rtol=1e-4)


def test_whitening_gradients_flow():
    x = torch.randn(64, 8, requires_grad=True)
    lin = torch.nn.Linear(8, 8)
    Whitening(8)(lin(x)).pow(3).sum().backward()
    assert lin.weight.grad.abs().sum() > 0


def test_heads_shapes():
    assert projection_mlp((32, 64, 16))(torch.randn(4, 32)).shape == (4, 16)
    assert projection_conv((8, 16, 4))(torch.randn(2, 8, 5, 5)).shape == (2, 4, 5, 5)


def test_momentum_and_queue():
    net = torch.nn.Linear(3, 3)
    twin = momentum_copy(net)
    with torch.no_grad():
        net.weight.add_(1.0)
    before = twin.weight.clone()
    ema_update(net, twin, 0.9)
    torch.testing.assert_close(twin.weight, 0.9 * before + 0.1 * net.weight)
    assert not any(p.requires_grad for p in twin.parameters())
    q = Queue(5, 3)
    q.push(torch.ones(3, 3))
    q.push(torch.full((3, 3), 2.0))  # wraps around: slots 3, 4, 0
    assert int(q.ptr) == 1
    torch.testing.assert_close(q.keys[0], q.keys[4])
    torch.testing.assert_close(q.keys[1], q.keys[2])


def test_inverse_square_root_gradient_is_exact_and_finite_for_repeated_eigenvalues():
    from medkit.models.whitening import InvSqrtSym
    torch.manual_seed(0)
    x = torch.randn(20, 4, dtype=torch.float64)
    a = (x.T @ x / 20 + 0.1 * torch.eye(4, dtype=torch.float64)).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda m: InvSqrtSym.apply(0.5 * (m + m.T), 1e-8), (a,))
    # repeated eigenvalues (two identical dead channels): autograd through eigh gives NaN, ours is finite
    d = torch.diag(torch.tensor([1e-4, 1e-4, 2.0, 3.0], dtype=torch.float64)).requires_grad_(True)
    InvSqrtSym.apply(d, 1e-8).sum().backward()
    assert torch.isfinite(d.grad).all()
    d2 = d.detach().clone().requires_grad_(True)
    lam, u = torch.linalg.eigh(d2)
    (u @ torch.diag_embed(lam.rsqrt()) @ u.T).sum().backward()
    assert not torch.isfinite(d2.grad).all()  # the failure this function exists to avoid

"""Losses against naive loop implementations written here, plus symmetry and gradients."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from medkit.losses import barlow_twins, moco_info_nce, nt_xent, partition_contrastive

torch.manual_seed(0)


def naive_supcon(z1, z2, part, vol, strategy, t):
    """Loop form of Chaitanya et al.'s strategies, written independently of the library."""
    u = [F.normalize(v, dim=0) for v in torch.cat([z1, z2])]
    n = len(z1)
    total = 0.0
    for i in range(2 * n):
        def cross(j):
            return part[j % n] == part[i % n] and vol[j % n] != vol[i % n]
        pos = [j for j in range(2 * n) if j != i and (j % n == i % n or (strategy == "GD" and cross(j)))]
        den = [j for j in range(2 * n) if j != i and not (strategy == "GD-" and cross(j))]
        z = sum(math.exp(float(u[i] @ u[a]) / t) for a in den)
        total += -sum(math.log(math.exp(float(u[i] @ u[p]) / t) / z) for p in pos) / len(pos)
    return total / (2 * n)


def test_nt_xent_hand_computed():
    # two samples in 2D, orthogonal views: every similarity is 0 or 1
    z1 = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    z2 = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    t = 1.0
    # anchor 0: positive sim 1 (its twin), others: sample 1 (0) and twin of 1 (0)
    expect = -math.log(math.e / (math.e + 2))
    assert float(nt_xent(z1, z2, t)) == pytest.approx(expect, rel=1e-6)


@pytest.mark.parametrize("strategy", ["GR", "GD-", "GD"])
def test_partition_contrastive_matches_naive(strategy):
    z1, z2 = torch.randn(8, 5), torch.randn(8, 5)
    part = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
    vol = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    got = float(partition_contrastive(z1, z2, part, vol, strategy, 0.5))
    assert got == pytest.approx(naive_supcon(z1, z2, part, vol, strategy, 0.5), rel=1e-5)


def test_gr_is_nt_xent_and_symmetric():
    z1, z2 = torch.randn(6, 4), torch.randn(6, 4)
    part, vol = torch.arange(6) % 2, torch.arange(6) // 2
    torch.testing.assert_close(partition_contrastive(z1, z2, part, vol, "GR", 0.1), nt_xent(z1, z2, 0.1))
    torch.testing.assert_close(nt_xent(z1, z2), nt_xent(z2, z1))
    perm = torch.randperm(6)  # the loss does not depend on the order of the batch
    torch.testing.assert_close(partition_contrastive(z1[perm], z2[perm], part[perm], vol[perm], "GD"),
                               partition_contrastive(z1, z2, part, vol, "GD"))


def test_moco_info_nce_matches_naive():
    q, k, queue = torch.randn(4, 6), torch.randn(4, 6), torch.randn(10, 6)
    qn, kn, Q = F.normalize(q, dim=1), F.normalize(k, dim=1), F.normalize(queue, dim=1)
    naive = 0.0
    for i in range(4):
        pos = math.exp(float(qn[i] @ kn[i]) / 0.2)
        neg = sum(math.exp(float(qn[i] @ Q[j]) / 0.2) for j in range(10))
        naive += -math.log(pos / (pos + neg)) / 4
    assert float(moco_info_nce(q, k, queue, 0.2)) == pytest.approx(naive, rel=1e-5)


def test_moco_info_nce_hand_computed():
    # q = k: positive similarity 1; the queue holds -q and an orthogonal key: similarities -1 and 0
    q = torch.tensor([[1.0, 0.0]])
    queue = torch.tensor([[-2.0, 0.0], [0.0, 3.0]])  # normalised inside
    expect = -math.log(math.e / (math.e + math.exp(-1) + 1))
    assert float(moco_info_nce(q, q, queue, 1.0)) == pytest.approx(expect, rel=1e-6)


def test_barlow_twins_naive_and_terms():
    z1, z2 = torch.randn(16, 3), torch.randn(16, 3)
    out = barlow_twins(z1, z2, lambd=0.1)
    a = (z1 - z1.mean(0)) / z1.std(0, unbiased=False)
    b = (z2 - z2.mean(0)) / z2.std(0, unbiased=False)
    c = [[float((a[:, i] * b[:, j]).mean()) for j in range(3)] for i in range(3)]
    inv = sum((1 - c[i][i]) ** 2 for i in range(3))
    red = sum(c[i][j] ** 2 for i in range(3) for j in range(3) if i != j)
    assert float(out["invariance"]) == pytest.approx(inv, rel=1e-4)
    assert float(out["loss"]) == pytest.approx(inv + 0.1 * red, rel=1e-4)
    same = barlow_twins(z1, z1)  # identical views: diagonal 1, invariance 0
    assert float(same["invariance"]) == pytest.approx(0.0, abs=1e-4)


def test_gradients_reach_the_embeddings():
    z1 = torch.randn(6, 4, requires_grad=True)
    z2 = torch.randn(6, 4, requires_grad=True)
    partition_contrastive(z1, z2, torch.arange(6) % 3, torch.arange(6) // 3, "GD").backward()
    assert z1.grad.abs().sum() > 0 and z2.grad.abs().sum() > 0


@pytest.mark.parametrize("call", [
    lambda: nt_xent(torch.randn(4, 3), torch.randn(5, 3)),
    lambda: moco_info_nce(torch.randn(4, 3), torch.randn(4, 3), torch.randn(7, 2)),
    lambda: partition_contrastive(torch.randn(4, 3), torch.randn(4, 3), torch.zeros(3), torch.zeros(4)),
    lambda: barlow_twins(torch.randn(4, 3, 2), torch.randn(4, 3, 2)),
])
def test_wrong_shapes_name_the_shapes(call):
    with pytest.raises(ValueError, match=r"\("):
        call()

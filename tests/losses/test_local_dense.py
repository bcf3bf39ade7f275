"""Local, dense and consistency losses: naive references, masks, and gradients to the layers."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from medkit.data.augment import AugmentConfig
from medkit.data.views import ViewConfig, make_views, pixel_grid, warp_to_view
from medkit.losses.consistency import cross_consistency
from medkit.losses.dense import dense_info_nce
from medkit.losses.local import RegionGrid, chaitanya_local, medmoco_local, pool_regions, region_grid

torch.manual_seed(0)
NO_INTENSITY = AugmentConfig(gamma=(1, 1), contrast=(1, 1), brightness=0, noise=0)


def test_chaitanya_local_matches_naive():
    f1, f2 = torch.randn(2, 4, 12, 12), torch.randn(2, 4, 12, 12)
    r, size, n_neg, t = 9, 3, 2, 0.5
    corners = region_grid(12, 12, r, size)
    e = [[F.normalize(pool_regions(f, corners, size)[b], dim=1) for f in (f1, f2)] for b in range(2)]
    dist = torch.cdist(corners.float(), corners.float())
    total, count = 0.0, 0
    for b in range(2):
        for v in range(2):
            for i in range(r):
                near = torch.argsort(dist[i], stable=True)[1:n_neg + 1].tolist()
                a = e[b][v][i]
                pos = math.exp(float(a @ e[b][1 - v][i]) / t)
                den = pos + sum(math.exp(float(a @ e[b][w][j]) / t) for w in range(2) for j in near)
                total += -math.log(pos / den)
                count += 1
    grid = RegionGrid(n_regions=r, px=size)
    got = float(chaitanya_local(f1, f2, grid, n_neg=n_neg, temperature=t))
    assert got == pytest.approx(total / count, rel=1e-5)
    # L^D: same-partition regions of other volumes become positives, so the value changes
    ld = chaitanya_local(f1, f2, grid, n_neg, t, partition=torch.tensor([0, 0]), volume=torch.tensor([0, 1]))
    assert float(ld) != pytest.approx(got)


def test_chaitanya_local_pools_where_its_grid_says():
    """Spacing moves the regions: the loss of a map whose only structure lies at the centre
    depends on whether the grid is spread over the map or packed around its centre."""
    torch.manual_seed(0)
    f = torch.zeros(2, 4, 32, 32)
    f[:, :, 10:22, 10:22] = torch.randn(2, 4, 12, 12)
    spread, packed = RegionGrid(13, px=3), RegionGrid(13, px=3, spacing=3)
    torch.testing.assert_close(packed.corners(32, 32), region_grid(32, 32, 13, 3, spacing=3))
    assert float(chaitanya_local(f, f, spread, 2, 0.5)) != pytest.approx(float(chaitanya_local(f, f, packed, 2, 0.5)))


def test_region_grid_spacing_puts_touching_regions_at_the_centre():
    spread = region_grid(32, 32, 13, 3)  # the paper's layout: a 4 x 4 grid over the whole map
    assert int(spread.min()) == 0 and int(spread.max()) == 29
    dense = region_grid(32, 32, 13, 3, spacing=3)  # touching regions: a 12 x 12 block in the middle
    assert int(dense.min()) == 10 and int(dense.max()) == 19
    gaps = torch.cdist(dense.float(), dense.float(), p=1)
    assert float(gaps[gaps > 0].min()) == 3.0  # neighbours touch, none overlap
    assert len({tuple(c) for c in dense.tolist()}) == 13
    with pytest.raises(ValueError, match="too small"):
        region_grid(10, 10, 13, 3, spacing=3)


def test_medmoco_local_matches_naive():
    """The pure loss on (B, R, C) region embeddings against a loop over anchors."""
    torch.manual_seed(0)
    e1, e2 = torch.randn(2, 3, 5), torch.randn(2, 3, 5)
    valid = torch.tensor([[True, True, False], [True, True, True]])
    t = 0.5
    total, count = 0.0, 0
    for b in range(2):
        u = F.normalize(torch.cat([e1[b], e2[b]]), dim=1)  # (2R, C): view 1 then view 2
        ok = valid[b].repeat(2)
        for i in range(6):
            if not ok[i]:
                continue
            pos = (i + 3) % 6
            den = sum(math.exp(float(u[i] @ u[a]) / t) for a in range(6) if a != i and ok[a])
            total += -(float(u[i] @ u[pos]) / t - math.log(den))
            count += 1
    assert float(medmoco_local(e1, e2, valid, t)) == pytest.approx(total / count, rel=1e-5)
    with pytest.raises(ValueError, match="medmoco_local"):
        medmoco_local(e1, e2[:, :2], valid, t)


def test_dense_info_nce_matches_naive_and_masks():
    q, k = torch.randn(2, 3, 3, 3), torch.randn(2, 3, 3, 3)
    valid = torch.ones(2, 3, 3, dtype=torch.bool)
    valid[1, 0, 0] = False
    t = 0.3
    total, n = 0.0, 0
    for b in range(2):
        qs = F.normalize(q[b].reshape(3, -1).T, dim=1)
        ks = F.normalize(k[b].reshape(3, -1).T, dim=1)
        ok = valid[b].reshape(-1)
        for i in range(9):
            if not ok[i]:
                continue
            den = sum(math.exp(float(qs[i] @ ks[j]) / t) for j in range(9) if ok[j])
            total += -math.log(math.exp(float(qs[i] @ ks[i]) / t) / den)
            n += 1
    assert float(dense_info_nce(q, k, valid, t)) == pytest.approx(total / n, rel=1e-5)
    qq = q.clone().requires_grad_(True)
    dense_info_nce(qq, k, valid, t).backward()
    assert torch.isfinite(qq.grad).all() and qq.grad.abs().sum() > 0


def test_warped_features_give_zero_loss_gap():
    """Equivariant features (the coordinate image itself) are perfectly aligned after warping."""
    g = torch.Generator().manual_seed(2)
    src = (pixel_grid(2, 32, 32).transpose(1, 2).reshape(2, 2, 32, 32) + 1) / 2
    cfg = ViewConfig(crop_scale=(0.5, 0.9), rotate=45, intensity=NO_INTENSITY)
    v = make_views(src, cfg, cfg, g)
    warped, valid = warp_to_view(v.x2, v.theta1, v.theta2)
    assert ((warped - v.x1).abs().amax(1)[valid]).max() < 1e-4


def test_cross_consistency():
    l1 = torch.randn(2, 3, 4, 4, requires_grad=True)
    l2 = torch.randn(2, 3, 4, 4, requires_grad=True)
    m = torch.randint(0, 3, (2, 4, 4))
    torch.testing.assert_close(cross_consistency(l1, l2, m), F.cross_entropy(l1, m) + F.cross_entropy(l2, m))
    un = cross_consistency(l1, l2)
    expect = F.cross_entropy(l1, l2.argmax(1)) + F.cross_entropy(l2, l1.argmax(1))
    torch.testing.assert_close(un, expect)
    un.backward()
    assert l1.grad.abs().sum() > 0 and l2.grad.abs().sum() > 0
    with pytest.raises(ValueError, match=r"\(B, H, W\)"):
        cross_consistency(l1, l2, m[:, :2])
    # a confidence threshold: only pixels where the other decoder is sure supervise
    c1, c2 = l1.softmax(1).amax(1), l2.softmax(1).amax(1)
    t = float(c2.median())
    l1.grad = l2.grad = None
    masked = cross_consistency(l1, l2, threshold=t)
    ce1 = F.cross_entropy(l1, l2.argmax(1), reduction="none")
    ce2 = F.cross_entropy(l2, l1.argmax(1), reduction="none")
    torch.testing.assert_close(masked, (ce1 * (c2 >= t)).mean() + (ce2 * (c1 >= t)).mean())
    masked.backward()
    unsure = (c2 < t) & (c1 < t)  # neither decoder is sure: no gradient reaches either there
    assert unsure.any() and l1.grad.abs().sum(1)[unsure].max() == 0 and l2.grad.abs().sum(1)[unsure].max() == 0

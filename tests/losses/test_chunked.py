"""Chunked (linear-memory) InfoNCE equals the naive form in value and gradients, to 1e-5."""
from __future__ import annotations

import pytest
import torch

from medkit.losses.chunked import dense_info_nce_chunked, info_nce_fn, nt_xent_chunked
from medkit.losses.dense import dense_info_nce
from medkit.losses.infonce import nt_xent


def _grads(fn, *xs):
    xs = [x.clone().double().requires_grad_(True) for x in xs]
    val = fn(*xs)
    val.backward()
    return val.detach(), [x.grad for x in xs]


@pytest.mark.parametrize("chunk", [1, 7, 1000])
def test_nt_xent_chunked_matches(chunk):
    z1, z2 = torch.randn(20, 8), torch.randn(20, 8)
    v0, g0 = _grads(lambda a, b: nt_xent(a, b, 0.3), z1, z2)
    v1, g1 = _grads(lambda a, b: nt_xent_chunked(a, b, 0.3, chunk=chunk), z1, z2)
    torch.testing.assert_close(v1, v0, atol=1e-5, rtol=1e-5)
    for a, b in zip(g1, g0):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("chunk", [5, 64])
def test_dense_chunked_matches_with_masks(chunk):
    q, k = torch.randn(3, 6, 5, 5), torch.randn(3, 6, 5, 5)
    valid = torch.rand(3, 5, 5) > 0.3
    v0, g0 = _grads(lambda a, b: dense_info_nce(a, b, valid, 0.2), q, k)
    v1, g1 = _grads(lambda a, b: dense_info_nce_chunked(a, b, valid, 0.2, chunk=chunk), q, k)
    torch.testing.assert_close(v1, v0, atol=1e-5, rtol=1e-5)
    for a, b in zip(g1, g0):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_info_nce_fn_switches_between_the_forms():
    """chunk 0 gives the naive form itself; chunk > 0 the chunked form with that chunk."""
    z1, z2 = torch.randn(10, 4), torch.randn(10, 4)
    q, k, valid = torch.randn(2, 4, 3, 3), torch.randn(2, 4, 3, 3), torch.rand(2, 3, 3) > 0.2
    assert info_nce_fn("dense", 0) is dense_info_nce
    assert info_nce_fn("nt_xent", 0).func is nt_xent
    assert info_nce_fn("nt_xent", 0, gather_distributed=True).keywords == {"gather_distributed": True}
    chunked = info_nce_fn("nt_xent", 3)
    assert chunked.func is nt_xent_chunked and chunked.keywords == {"chunk": 3}
    torch.testing.assert_close(chunked(z1, z2, 0.3), nt_xent(z1, z2, 0.3))
    dense = info_nce_fn("dense", 4)
    assert dense.func is dense_info_nce_chunked and dense.keywords == {"chunk": 4}
    torch.testing.assert_close(dense(q, k, valid, 0.2), dense_info_nce(q, k, valid, 0.2))
    with pytest.raises(ValueError, match="'nt_xent' or 'dense'"):
        info_nce_fn("supcon", 0)

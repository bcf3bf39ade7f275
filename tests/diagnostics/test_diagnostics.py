from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from medkit.diagnostics import (alignment, collapsed_fraction, correlation_matrix, dead_fraction, effective_rank_cov,
                                normalized_std, rankme, spectrum, uniformity)

g = torch.Generator().manual_seed(0)
ISO = torch.randn(4000, 32, generator=g)                      # healthy: isotropic
LOW = torch.randn(4000, 4, generator=g) @ torch.randn(4, 32, generator=g)  # collapsed to rank 4


def test_spectrum_of_known_rank():
    s_iso, s_low = spectrum(ISO), spectrum(LOW)
    assert s_iso.shape == (32,) and (s_iso[:-1] >= s_iso[1:]).all()
    assert s_iso[-1] / s_iso[0] > 0.5  # isotropic: flat
    assert (s_low[4:] < 1e-6 * s_low[0]).all() and s_low[3] > 1e-3 * s_low[0]  # a cliff after 4


def test_spectrum_of_known_values():
    # axis-aligned Gaussian with stds 3, 2, 1 and no normalisation: covariance eigenvalues 9, 4, 1
    z = torch.randn(200000, 3, generator=g) * torch.tensor([3.0, 2.0, 1.0])
    torch.testing.assert_close(spectrum(z, normalize=False), torch.tensor([9.0, 4.0, 1.0]), rtol=0.03, atol=0)


def test_effective_ranks():
    assert rankme(ISO) > 0.9 * 32 and effective_rank_cov(ISO) > 0.9 * 32
    assert 3 < rankme(LOW) <= 4.05 and effective_rank_cov(LOW) <= 4.05
    one = torch.ones(100, 32)  # every embedding the same direction
    assert rankme(one) == pytest.approx(1.0, abs=0.01)


def test_collapsed_dead_std():
    assert collapsed_fraction(ISO) == 0 and collapsed_fraction(LOW) == pytest.approx(28 / 32)
    z = ISO.clone()
    z[:, :8] = 0.5
    assert dead_fraction(ISO) == 0 and dead_fraction(z) == pytest.approx(8 / 32)
    assert normalized_std(ISO) == pytest.approx(1 / math.sqrt(32), rel=0.05)
    assert normalized_std(torch.ones(50, 32)) == pytest.approx(0.0, abs=1e-6)


def test_alignment_uniformity_correlation():
    assert alignment(ISO, ISO) == pytest.approx(0.0, abs=1e-9)
    assert alignment(ISO, torch.randn(4000, 32, generator=g)) == pytest.approx(2.0, rel=0.05)
    assert uniformity(ISO[:1000]) < -3 and uniformity(torch.ones(100, 32)) == pytest.approx(0.0, abs=1e-6)
    c = correlation_matrix(ISO)
    assert torch.allclose(torch.diagonal(c), torch.ones(32), atol=1e-5)
    assert (c - torch.eye(32)).abs().max() < 0.1
    assert (correlation_matrix(LOW) - torch.eye(32)).abs().max() > 0.5


def test_bad_shape():
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        rankme(torch.randn(10))


def test_correlation_matches_numpy_and_a_dead_dimension_is_zero_not_nan():
    z = torch.randn(200, 5, dtype=torch.float64)
    z[:, 1] = 2 * z[:, 0] + 0.1 * z[:, 1]
    z[:, 4] = 3.0  # dead
    c = correlation_matrix(z)
    ref = np.corrcoef(z[:, :4].numpy().T)
    np.testing.assert_allclose(c[:4, :4].numpy(), ref, atol=1e-6)
    assert torch.isfinite(c).all() and (c[4] == 0).all() and (c[:, 4] == 0).all()

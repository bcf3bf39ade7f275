"""The sign-flip test, its interval, Holm and the verdict: values by hand, scipy as the reference,
and seeded simulations of the verdict's calibration (``pytest -s`` prints the rates)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from medkit.errors import MedkitError
from medkit.eval.verdicts import (MIN_PAIRS, N_FLIPS, _exact_p, family_verdicts, holm, signflip_interval,
                                  signflip_p, verdict)

SIX = [0.01, 0.02, 0.03, 0.04, 0.05, 0.06]
EXPERIMENTS = 2000  # per simulated setting: a rate of 0.05 is measured to +- 0.005 (one standard error)
NULLS = {"normal": lambda rng, shape: rng.normal(0.0, 0.03, shape),
         "t(3)": lambda rng, shape: 0.03 * rng.standard_t(3, shape)}


def _scipy_p(d) -> float:
    return stats.permutation_test((np.asarray(d, dtype=float),), lambda x, axis=-1: np.mean(x, axis=axis),
                                  permutation_type="samples", n_resamples=np.inf).pvalue


def test_signflip_p_by_hand():
    assert signflip_p(SIX) == pytest.approx(2 / 2**6, rel=1e-12)  # only all-plus and all-minus reach |T|
    assert signflip_p([-x for x in SIX]) == pytest.approx(2 / 2**6, rel=1e-12)  # two-sided: B worse as well
    assert signflip_p([-0.01] + SIX[1:]) == pytest.approx(4 / 2**6, rel=1e-12)  # flipping -0.01 gives 0.21 > 0.19
    assert signflip_p(np.linspace(0.01, 0.2, 20)) == pytest.approx(2 / 2**20, rel=1e-12)  # still exact at 20
    assert signflip_p(np.zeros(7)) == 1.0 and signflip_p([0.1, -0.1]) == 1.0
    np.testing.assert_allclose(signflip_p(np.array([SIX, [-0.01] + SIX[1:]])), [2 / 64, 4 / 64], rtol=1e-12)
    with pytest.raises(MedkitError, match="^d must be finite"):
        signflip_p([0.1, np.nan])


def test_signflip_p_is_scipys_exact_permutation_test():
    rng = np.random.default_rng(0)
    for n in (2, 3, 6, 7, 10, 13):
        d = rng.normal(0.01, 0.03, n)
        assert signflip_p(d) == pytest.approx(_scipy_p(d), rel=1e-12)
    tied = [0.10, 0.05, 0.05, 0.10, -0.05, 0.05]  # equal sums reached in another order still count
    assert signflip_p(tied) == pytest.approx(_scipy_p(tied), rel=1e-12)


def test_monte_carlo_above_twenty_pairs():
    d = np.random.default_rng(1).normal(0.008, 0.03, 22)
    p, exact = signflip_p(d), _exact_p(d[None], np.abs([d.sum()]) - 1e-12)[0]
    assert p == signflip_p(d) and (p * (1 + N_FLIPS)) == pytest.approx(round(p * (1 + N_FLIPS)))  # seeded, (1+k)/(1+N)
    assert abs(p - exact) < 4 * np.sqrt(exact * (1 - exact) / N_FLIPS)
    assert signflip_p(np.full(21, 0.1)) == pytest.approx(1 / (1 + N_FLIPS))  # sampled: no pattern reaches it


def test_six_pairs_is_the_fewest_with_a_possible_verdict():
    # a verdict needs p <= 0.05 to be reachable; the smallest two-sided p of n pairs is 2 / 2**n
    smallest = {n: signflip_p(np.arange(1.0, n + 1)) for n in range(1, 9)}
    assert smallest == pytest.approx({n: 2 / 2**n for n in range(1, 9)})
    assert MIN_PAIRS == min(n for n, p in smallest.items() if p <= 0.05) == 6


def test_interval_by_hand_and_where_the_test_turns():
    # n = 6: p(d - delta) = 2 / 2**6 (rejected) only while every d_i - delta has one sign
    assert signflip_interval(SIX) == pytest.approx((0.01, 0.06), abs=1e-9)
    # at 90 % p <= 6 / 2**6 rejects too: delta beyond the second smallest (largest) value
    assert signflip_interval(SIX, confidence=0.90) == pytest.approx((0.02, 0.05), abs=1e-9)
    assert all(np.isnan(signflip_interval(SIX[:5]))) and all(np.isnan(signflip_interval([0.1])))
    assert signflip_interval([0.02] * 8) == (0.02, 0.02)
    rng = np.random.default_rng(2)
    d = rng.normal(0.01, 0.03, (5, 10))
    lo, hi = signflip_interval(d)
    for row, low, high in zip(d, lo, hi):
        assert signflip_interval(row) == pytest.approx((low, high), abs=1e-12)
        assert signflip_p(row - (low - 1e-7)) <= 0.05 < signflip_p(row - (low + 1e-7))
        assert signflip_p(row - (high + 1e-7)) <= 0.05 < signflip_p(row - (high - 1e-7))
    with pytest.raises(MedkitError, match="^confidence must be in"):
        signflip_interval(SIX, confidence=95)


def test_holm_by_hand():
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04; running maximum: 0.06 for the last
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02], rtol=1e-12)
    np.testing.assert_allclose(holm([0.6, 0.7]), [1.0, 1.0])
    assert holm([0.2]).tolist() == [0.2] and holm([]).tolist() == []


def test_verdict_reads_the_adjusted_p():
    assert verdict(0.02, 0.049, 10) == "B better" and verdict(-0.02, 0.01, 10) == "B worse"
    assert verdict(0.02, 0.05, 10) == "B better"  # p <= alpha rejects
    assert verdict(0.02, 0.051, 10) == "inside the noise" and verdict(-0.3, 0.2, 30) == "inside the noise"
    assert verdict(0.02, 0.08, 10, alpha=0.10) == "B better"
    assert verdict(0.05, 0.001, 5) == "too few pairs" and verdict(0.05, np.nan, 10) == "too few pairs"


def test_family_verdicts_adjust_the_rows_that_can_reach_a_verdict():
    table = pd.DataFrame({"pairs": [10, 10, 4, 10], "mean_diff": [0.02, -0.03, 0.05, 0.01],
                          "signflip_p": [0.02, 0.004, 0.125, 0.04], "ci_high": [0.04, -0.01, np.nan, 0.03]})
    out = family_verdicts(table)
    np.testing.assert_allclose(out["p_adjusted"], [0.04, 0.012, np.nan, 0.04], rtol=1e-12)
    assert (out["family_size"] == 3).all()
    assert list(out["verdict"]) == ["B better", "B worse", "too few pairs", "B better"]
    assert list(family_verdicts(table.assign(signflip_p=[0.02, 0.004, 0.125, 0.3]))["verdict"]) == \
        ["B better", "B worse", "too few pairs", "inside the noise"]
    split = family_verdicts(table.assign(metric=["mean", "LV", "LV", "mean"]), by="metric")
    np.testing.assert_allclose(split["p_adjusted"], [0.04, 0.004, np.nan, 0.04], rtol=1e-12)
    assert list(split["family_size"]) == [2, 1, 1, 2]
    with pytest.raises(MedkitError, match="no column.s. signflip_p"):
        family_verdicts(table.drop(columns=["signflip_p"]))
    with pytest.raises(MedkitError, match="no column.s. metric"):
        family_verdicts(table, by="metric")


@pytest.mark.parametrize("null", list(NULLS))
@pytest.mark.parametrize("n", [6, 10, 20])
def test_false_positive_rate_is_at_most_five_percent(n, null):
    rng = np.random.default_rng(100 * n + len(null))
    d = NULLS[null](rng, (EXPERIMENTS, n))
    p = signflip_p(d)  # one comparison per experiment: a family of one
    calls = np.mean([verdict(m, holm([q])[0], n) != "inside the noise" for m, q in zip(d.mean(axis=1), p)])
    bound = 0.05 + 2 * np.sqrt(0.05 * 0.95 / EXPERIMENTS)
    print(f"\nfalse-positive rate, {null} null, n = {n}: {calls:.4f} (bound {bound:.4f})")
    assert calls <= bound


def test_a_family_of_four_null_comparisons_calls_at_most_five_percent():
    rng = np.random.default_rng(4)
    d = rng.normal(0.0, 0.03, (EXPERIMENTS, 4, 10))  # 4 metrics of one comparison, all without a difference
    p = signflip_p(d.reshape(-1, 10)).reshape(EXPERIMENTS, 4)
    any_call = np.mean([any(verdict(m, q, 10) != "inside the noise" for m, q in zip(means, holm(ps)))
                        for means, ps in zip(d.mean(axis=2), p)])
    unadjusted = np.mean((p <= 0.05).any(axis=1))
    print(f"\nfamily of 4 nulls, n = 10: any call {any_call:.4f} with Holm, {unadjusted:.4f} without")
    assert any_call <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / EXPERIMENTS) < unadjusted


@pytest.mark.parametrize("n, at_least", [(10, 0.75), (20, 0.97)])
def test_power_for_a_difference_of_one_standard_deviation(n, at_least):
    d = np.random.default_rng(n).normal(0.03, 0.03, (EXPERIMENTS, n))
    power = np.mean([verdict(m, q, n) == "B better" for m, q in zip(d.mean(axis=1), signflip_p(d))])
    print(f"\npower, true difference 0.03, sd 0.03, n = {n}: {power:.4f}")
    assert power >= at_least


@pytest.mark.parametrize("null", list(NULLS))
def test_interval_coverage_at_ten_pairs(null):
    rng = np.random.default_rng(10 + len(null))
    d = NULLS[null](rng, (1000, 10))
    lo, hi = signflip_interval(d)
    covered = (lo <= 0) & (0 <= hi)
    mean, se = d.mean(axis=1), d.std(axis=1, ddof=1) / np.sqrt(10)
    half = stats.t.ppf(0.975, 9) * se
    t_cover = np.mean((mean - half <= 0) & (0 <= mean + half))
    print(f"\ncoverage at n = 10, {null} null: sign-flip interval {covered.mean():.3f}, t interval {t_cover:.3f}")
    assert covered.mean() >= 0.95 - 2 * np.sqrt(0.05 * 0.95 / 1000)
    assert (~covered == (signflip_p(d) <= 0.05)).all()  # the interval excludes 0 exactly when the test rejects

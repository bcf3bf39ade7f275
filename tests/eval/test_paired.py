"""Paired statistics against values computed by hand (the sign-flip test itself: test_verdicts.py)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from medkit.cli import main
from medkit.errors import MedkitError
from medkit.eval.paired import (against_random, bootstrap_ci, compare_groups, compare_settings, paired_differences,
                                sentences, summarise_pairs, wilcoxon_p)


def _results(scores: dict[tuple[int, int], tuple[float, float]], patients=None) -> pd.DataFrame:
    """Two test cases per (combination, seed) pair at k = 1; per-class Dice = overall - 0.1."""
    rows = []
    for (c, s), (x, y) in scores.items():
        for case, d in (("t1", x), ("t2", y)):
            rows.append({"k": "1", "combination": c, "seed": s, "case": case, "dice_mean": d,
                         "dice/LV": d - 0.1, "patients": (patients or {}).get(c, f"p{c}")})
    return pd.DataFrame(rows)


A = _results({(1, 0): (0.50, 0.60), (1, 1): (0.40, 0.60), (2, 0): (0.70, 0.70), (2, 1): (0.20, 0.40)})
B = _results({(1, 0): (0.60, 0.70), (1, 1): (0.50, 0.60), (2, 0): (0.70, 0.80), (2, 1): (0.40, 0.40)})
# pair means: A 0.55, 0.50, 0.70, 0.30; B 0.65, 0.55, 0.75, 0.40 -> B - A = 0.10, 0.05, 0.05, 0.10


def _only_mean(table: pd.DataFrame) -> pd.DataFrame:
    """The table with one Dice column: a family of one comparison per k."""
    return table.drop(columns=["dice/LV"])


def _pairs(diffs: list[float]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A and B over len(diffs) combinations (seed 0) with B - A = diffs, overall Dice only."""
    scores_a = {(c, 0): (0.5, 0.5) for c in range(1, len(diffs) + 1)}
    scores_b = {(c, 0): (0.5 + x, 0.5 + x) for c, x in zip(range(1, len(diffs) + 1), diffs)}
    return _only_mean(_results(scores_a)), _only_mean(_results(scores_b))


def _summary(diffs: list[float], **kw) -> pd.Series:
    return summarise_pairs(paired_differences(*_pairs(diffs)), **kw).set_index("metric").loc["dice_mean"]


def test_paired_differences_and_summary_by_hand():
    d = paired_differences(A, B)
    np.testing.assert_allclose(d["dice_mean|diff"], [0.10, 0.05, 0.05, 0.10], atol=1e-12)
    np.testing.assert_allclose(d["dice/LV|diff"], [0.10, 0.05, 0.05, 0.10], atol=1e-12)
    s = summarise_pairs(d).set_index("metric").loc["dice_mean"]
    assert s["pairs"] == 4 and s["won"] == 4 and s["lost"] == 0
    assert s["mean_a"] == pytest.approx(0.5125) and s["mean_b"] == pytest.approx(0.5875)
    assert s["mean_diff"] == pytest.approx(0.075)
    assert s["wilcoxon_p"] == pytest.approx(0.125)  # all 4 signs positive: exact two-sided 2 / 2**4
    assert s["signflip_p"] == pytest.approx(2 / 2**4, rel=1e-12)  # only all-plus and all-minus reach |T|
    assert 0.05 <= s["boot_low"] <= 0.075 <= s["boot_high"] <= 0.10
    assert np.isnan(s["ci_low"]) and np.isnan(s["ci_high"])  # 2 / 2**4 > 0.05: the test inverts to no interval
    assert np.isnan(s["p_adjusted"]) and s["family_size"] == 0  # no row can reach a verdict: no test in the family
    assert s["verdict"] == "too few pairs"  # 4 pairs: no two-sided test at 5 % can reject (p >= 2 / 2**4)


def test_a_verdict_needs_six_pairs():
    s = _summary([0.01, 0.02, 0.03, 0.04, 0.05, 0.06])
    assert s["pairs"] == 6 and s["verdict"] == "B better" and s["family_size"] == 1
    assert s["signflip_p"] == pytest.approx(2 / 2**6, rel=1e-12) and s["p_adjusted"] == s["signflip_p"]
    assert s["wilcoxon_p"] == pytest.approx(2 / 2**6)
    # by hand: p(d - delta) = 2 / 2**6 <= 0.05 only while every d_i - delta has one sign: [min d, max d]
    assert (s["ci_low"], s["ci_high"]) == pytest.approx((0.01, 0.06), abs=1e-9)
    worse = summarise_pairs(paired_differences(*reversed(_pairs([0.01, 0.02, 0.03, 0.04, 0.05, 0.06]))))
    assert worse.loc[0, "verdict"] == "B worse" and worse.loc[0, "mean_diff"] == pytest.approx(-0.035)
    five = _summary([0.01, 0.02, 0.03, 0.04, 0.05])
    assert five["verdict"] == "too few pairs" and five["signflip_p"] == pytest.approx(2 / 2**5)
    assert np.isnan(five["ci_low"]) and five["family_size"] == 0


def test_a_p_between_five_and_ten_percent_is_inside_the_noise_at_95_percent():
    # by hand: |T| = 0.19 is reached by all-plus (0.19) and by flipping -0.01 (0.21), and their mirror
    # images: p = 4 / 2**6 = 0.0625
    d = [-0.01, 0.02, 0.03, 0.04, 0.05, 0.06]
    s = _summary(d)
    assert s["signflip_p"] == pytest.approx(4 / 2**6, rel=1e-12) and s["verdict"] == "inside the noise"
    assert s["ci_low"] < 0 < s["ci_high"]
    assert _summary(d, confidence=0.90)["verdict"] == "B better"


def test_each_dice_column_of_a_table_is_one_family_holm_adjusted():
    from medkit.eval.paired import FAMILY
    from medkit.eval.verdicts import family_verdicts
    six = [0.01, 0.02, 0.03, 0.04, 0.05, 0.06]
    a, b = _pairs(six)
    two = summarise_pairs(paired_differences(a.assign(**{"dice/LV": a["dice_mean"]}),
                                             b.assign(**{"dice/LV": b["dice_mean"]}))).set_index("metric")
    # one comparison, two Dice columns: two families of one test each, p = 2 / 2**6 = 0.031 unadjusted
    assert FAMILY == "metric" and list(two["family_size"]) == [1, 1]
    np.testing.assert_allclose(two["p_adjusted"], [2 / 2**6] * 2, rtol=1e-12)
    assert list(two["verdict"]) == ["B better", "B better"]
    # two comparisons stacked in one table: each column's family has two rows with p = 2 / 2**6; Holm
    # multiplies the smaller by 2 and keeps the order (running maximum): 0.0625 > 0.05 for both
    stacked = family_verdicts(pd.concat([two.reset_index(), two.reset_index()], ignore_index=True), by=FAMILY)
    assert list(stacked["family_size"]) == [2, 2, 2, 2]
    np.testing.assert_allclose(stacked["p_adjusted"], [2 * 2 / 2**6] * 4, rtol=1e-12)
    assert set(stacked["verdict"]) == {"inside the noise"}
    seven = summarise_pairs(paired_differences(*_pairs(six + [0.07])))
    assert seven.loc[0, "p_adjusted"] == pytest.approx(2 / 2**7, rel=1e-12) and seven.loc[0, "verdict"] == "B better"


def test_stacked_comparisons_are_one_family():
    a, b = _pairs([0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07])
    c = b.assign(dice_mean=b["dice_mean"] + 0.01)
    table = pd.concat([a.assign(variant="base"), b.assign(variant="b"), c.assign(variant="c")], ignore_index=True)
    pairs, summary = compare_groups(table, "variant")
    assert len(pairs) == 14 and list(summary["family_size"]) == [2, 2]
    np.testing.assert_allclose(summary["signflip_p"], [2 / 2**7] * 2, rtol=1e-12)
    np.testing.assert_allclose(summary["p_adjusted"], [2 * 2 / 2**7] * 2, rtol=1e-12)
    _, alone = compare_settings(table.assign(setting=table["variant"]), "base", "c")
    assert alone.loc[0, "family_size"] == 1 and alone.loc[0, "p_adjusted"] == pytest.approx(2 / 2**7)


def test_summary_p_values_match_scipy():
    rng = np.random.default_rng(5)
    diffs = list(np.round(rng.normal(0.004, 0.03, 10), 4))
    s = _summary(diffs)
    ref = stats.permutation_test((np.array(diffs),), lambda x, axis=-1: np.mean(x, axis=axis),
                                 permutation_type="samples", n_resamples=np.inf).pvalue
    assert s["signflip_p"] == pytest.approx(ref, rel=1e-12) and s["verdict"] == "inside the noise"
    assert s["wilcoxon_p"] == pytest.approx(stats.wilcoxon(diffs).pvalue)
    assert s["ci_low"] < 0 < s["ci_high"] and s["won"] + s["lost"] == 10


def _naive_bca(d: np.ndarray, confidence: float = 0.95, n_resamples: int = 40000) -> np.ndarray:
    """Efron's BCa interval of the mean, written out: bias z0 from the share of resampled means
    below the mean, acceleration a from the jackknife (Efron & Tibshirani 1993, eq. 14.14-14.15)."""
    rng = np.random.default_rng(1)
    boot = d[rng.integers(0, len(d), (n_resamples, len(d)))].mean(axis=1)
    z0 = stats.norm.ppf((boot < d.mean()).mean())
    jack = np.array([np.delete(d, i).mean() for i in range(len(d))])
    u = jack.mean() - jack
    a = (u**3).sum() / (6 * (u**2).sum() ** 1.5)
    z = stats.norm.ppf([(1 - confidence) / 2, (1 + confidence) / 2])
    return np.quantile(boot, stats.norm.cdf(z0 + (z0 + z) / (1 - a * (z0 + z))))


def test_bootstrap_interval_is_bca_at_95_percent():
    d = np.array([0.01, 0.02, 0.015, 0.03, 0.2, 0.012, 0.018, 0.025, -0.01, 0.005])  # skewed: BCa moves up
    lo, hi = bootstrap_ci(d)
    np.testing.assert_allclose((lo, hi), _naive_bca(d), atol=0.002)  # percentile would be (0.0085, 0.072)
    ref = stats.bootstrap((d,), np.mean, method="BCa", n_resamples=9999, random_state=np.random.default_rng(0))
    assert (lo, hi) == pytest.approx(tuple(ref.confidence_interval), rel=1e-12)
    diffs = paired_differences(*_pairs(list(d)))
    s = summarise_pairs(diffs).loc[0]
    assert (s["boot_low"], s["boot_high"]) == pytest.approx(bootstrap_ci(diffs["dice_mean|diff"]), rel=1e-12)


def test_bootstrap_interval_and_wilcoxon_edge_cases():
    assert bootstrap_ci(np.array([0.02, 0.02, 0.02])) == (0.02, 0.02)
    assert all(np.isnan(bootstrap_ci(np.array([0.1]))))
    lo, hi = bootstrap_ci(np.array([-0.05, 0.04, -0.02, 0.03, 0.01, -0.01]))
    assert lo < 0 < hi  # a mean near 0 with both signs: the interval holds 0
    assert wilcoxon_p(np.zeros(5)) == 1.0
    d = np.array([0.3, -0.1, 0.2, 0.25, -0.05, 0.15, 0.12])
    # by hand: ranks of |d| 7,2,5,6,1,4,3; W- = 2 + 1 = 3; rank sets with sum <= 3: {}, {1}, {2}, {3}, {1,2};
    # exact two-sided p = 2 * 5 / 2**7
    assert wilcoxon_p(d) == pytest.approx(10 / 128)


def test_pairs_are_matched_by_key_not_by_row_order():
    shuffled = B.sample(frac=1, random_state=3)
    d = paired_differences(A, shuffled).set_index(["combination", "seed"])["dice_mean|diff"]
    assert d.to_dict() == pytest.approx({(1, 0): 0.10, (1, 1): 0.05, (2, 0): 0.05, (2, 1): 0.10})


def test_other_test_volumes_on_one_side_are_refused():
    other = B.copy()
    other.loc[(other["combination"] == 2) & (other["seed"] == 1) & (other["case"] == "t2"), "case"] = "t3"
    with pytest.raises(MedkitError, match="k=1 combination 2 seed 1 .*not paired"):
        paired_differences(A, other)


def test_unpaired_runs_are_refused():
    with pytest.raises(MedkitError, match="same .k, combination, seed. pairs"):
        paired_differences(A, B[B["seed"] == 0])
    with pytest.raises(MedkitError, match="not paired"):
        paired_differences(A, _results({(1, 0): (0, 0), (1, 1): (0, 0), (2, 0): (0, 0), (2, 1): (0, 0)}, {1: "x"}))


def test_compare_command_prints_and_writes(tmp_path, capsys):
    for name, table, params in (("random", A, {"command": "supervised"}),
                                ("pix", B, {"command": "evaluate", "method": "pix2rep", "eval_protocol": "finetune"})):
        (tmp_path / name).mkdir()
        table.to_csv(tmp_path / name / "results.csv", index=False)
        (tmp_path / name / "params.json").write_text(json.dumps(params))
    out = tmp_path / "cmp" / "table.csv"
    assert main(["compare", str(tmp_path / "random"), str(tmp_path / "pix"), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "pix (pix2rep, finetune)" in text and "+0.075 [" in text and "4/4" in text and "too few pairs" in text
    table = pd.read_csv(out)
    assert set(table["metric"]) == {"dice_mean", "dice/LV"}
    assert len(pd.read_csv(tmp_path / "cmp" / "table_pairs.csv")) == 4
    assert main(["compare", str(tmp_path / "random"), str(tmp_path / "nope")]) == 2
    assert "no results.csv" in capsys.readouterr().err


def test_compare_groups_and_sentences():
    table = pd.concat([A.assign(variant="base"), B.assign(variant="better")], ignore_index=True)
    pairs, summary = compare_groups(table, "variant")
    assert set(pairs["comparison"]) == {"better - base"} and len(pairs) == 4
    (line,) = sentences(summary)
    assert line == "k=1, better - base: +0.075 Dice over 4 pairs, won 4/4: too few pairs"
    with pytest.raises(MedkitError, match="nothing to compare"):
        compare_groups(table[table["variant"] == "base"], "variant")
    a, b = _pairs([0.01, 0.02, 0.03, 0.04, 0.05, 0.06])
    _, six = compare_groups(pd.concat([a.assign(variant="x"), b.assign(variant="y")]), "variant")
    assert sentences(six) == ["k=1, y - x: +0.035 Dice [95 % CI +0.010, +0.060] over 6 pairs, won 6/6, "
                              "sign-flip p 0.031, Holm 0.031 in a family of 1: B better"]
    old = six.drop(columns=["signflip_p", "p_adjusted", "family_size"])  # a table written before the test
    assert sentences(old)[0].endswith("over 6 pairs, won 6/6: B better")


def test_against_random_pairs_each_setting_with_random_under_its_protocol():
    rows = []
    for init, proto, table in (("random", "linear", A), ("pix", "linear", B), ("random", "finetune", B),
                               ("pix", "finetune", A)):
        rows.append(table.assign(init=init, protocol=proto, setting=f"{init}, {proto}"))
    pairs, summary = against_random(pd.concat(rows, ignore_index=True))
    overall = summary[summary["metric"] == "dice_mean"].set_index("comparison")["mean_diff"]
    assert overall["pix, linear - random, linear"] == pytest.approx(0.075)
    assert overall["pix, finetune - random, finetune"] == pytest.approx(-0.075)


def test_a_table_mixing_settings_is_refused():
    with pytest.raises(MedkitError, match="mixes settings"):
        paired_differences(pd.concat([A, B]), B)

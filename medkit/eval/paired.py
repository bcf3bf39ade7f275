"""Paired comparison of two settings over the same (label budget, combination, seed) pairs.

A few-label result depends strongly on which volumes are labelled (on ACDC at k = 1 the standard
deviation over Chaitanya et al.'s combinations is 0.05 to 0.07 Dice) and on the training seed,
so two settings are compared pair by pair: both trained on the same combination with the same
seed and scored on the same test volumes. For each pair p, with s(p) the mean over test volumes
of a Dice score,

    d(p) = s_B(p) - s_A(p),      mean difference  d_bar = 1/n sum_p d(p).

The verdict comes from the exact paired sign-flip test of d_bar (:mod:`medkit.eval.verdicts`),
Holm-adjusted over the rows of the reported table (one family), beside the 95 % interval that
inverts that test; a 95 % BCa bootstrap interval of d_bar (``scipy.stats.bootstrap``, resampling
pairs; Efron 1987, JASA 82:171), the pairs B wins and the two-sided Wilcoxon signed-rank p
(``scipy.stats.wilcoxon``) are reported too, but decide nothing: in null simulations at 10 pairs
"the BCa interval excludes 0" called a difference in 10 % to 13 % of experiments. With fewer
than ``MIN_PAIRS`` = 6 pairs no verdict is given: the smallest two-sided sign-flip p of n pairs is
2 / 2^n, above 0.05 for n <= 5.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats

from medkit.errors import MedkitError
from medkit.eval.verdicts import MIN_PAIRS, family_verdicts, signflip_interval, signflip_p

__all__ = ["MIN_PAIRS", "PAIR", "against_random", "bootstrap_ci", "compare_groups", "compare_settings",
           "pair_scores", "paired_differences", "sentences", "summarise_pairs", "wilcoxon_p"]

PAIR = ["k", "combination", "seed"]
# a family of tests is one reported table: one Dice column (overall, or one class) over every
# comparison and k of the table; its p-values are Holm-adjusted together
FAMILY = "metric"


def pair_scores(results: pd.DataFrame) -> pd.DataFrame:
    """Mean over test volumes of every Dice column, one row per (k, combination, seed) pair.

    Args:
        results: one row per (k, combination, seed, test case), as in a run's ``results.csv``
            (a table without a ``seed`` column is taken as one seed).

    Returns:
        columns k, combination, seed, the Dice columns, ``patients`` (when known) and ``cases``
        (the sorted test cases, joined), indexed by nothing in particular.
    """
    if "seed" not in results:
        results = results.assign(seed=0)
    missing = [c for c in PAIR + ["case", "dice_mean"] if c not in results]
    if missing:
        raise MedkitError(f"results have no column(s) {', '.join(missing)}: not a few-label results table")
    results = results.assign(k=results["k"].astype(str))
    if results.duplicated(PAIR + ["case"]).any():
        raise MedkitError("several rows per (k, combination, seed, test case): the table mixes settings; "
                          "compare one setting at a time")
    dice = [c for c in results.columns if c == "dice_mean" or c.startswith("dice/")]
    grouped = results.groupby(PAIR, sort=False)
    out = grouped[dice].mean()
    out["cases"] = grouped["case"].agg(lambda c: "+".join(sorted(map(str, c))))
    if "patients" in results:
        out["patients"] = grouped["patients"].first()
    return out.reset_index()


def paired_differences(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """Per pair, the score of A, of B and B - A for every Dice column both tables have.

    Args:
        a, b: results tables (:func:`pair_scores` is applied here).

    Raises:
        MedkitError: a pair present on one side only, or a pair trained on other patients or
            scored on other test volumes on the two sides (then it is no pair).
    """
    pa, pb = pair_scores(a), pair_scores(b)
    keys_a, keys_b = set(map(tuple, pa[PAIR].values)), set(map(tuple, pb[PAIR].values))
    if keys_a != keys_b:
        only_a = sorted(keys_a - keys_b)[:3]
        only_b = sorted(keys_b - keys_a)[:3]
        raise MedkitError(f"the two runs do not have the same (k, combination, seed) pairs: only in A {only_a}, "
                          f"only in B {only_b}; run both with the same --labelled, --combos and --seeds")
    m = pa.merge(pb, on=PAIR, suffixes=("_a", "_b"), sort=False)
    bad = m["cases_a"] != m["cases_b"]
    if "patients_a" in m and "patients_b" in m:
        bad |= m["patients_a"] != m["patients_b"]
    if bad.any():
        k, c, s = m.loc[bad, PAIR].iloc[0]
        raise MedkitError(f"pair k={k} combination {c} seed {s} was trained on other patients or scored on other "
                          f"test volumes in the two runs: they are not paired (same data and --split?)")
    metrics = [c for c in pa.columns if (c == "dice_mean" or c.startswith("dice/")) and c in pb.columns]
    out = m[PAIR].copy()
    for c in metrics:
        out[f"{c}|a"], out[f"{c}|b"] = m[f"{c}_a"], m[f"{c}_b"]
        out[f"{c}|diff"] = m[f"{c}_b"] - m[f"{c}_a"]
    return out


def bootstrap_ci(d: np.ndarray, confidence: float = 0.95, n_resamples: int = 9999,
                 seed: int = 0) -> tuple[float, float]:
    """Confidence interval of the mean of ``d`` by resampling its values (BCa; percentile where
    BCa is undefined, e.g. all values equal). (nan, nan) for fewer than 2 values."""
    d = np.asarray(d, dtype=float)
    if len(d) < 2:
        return float("nan"), float("nan")
    if np.ptp(d) == 0:
        return float(d[0]), float(d[0])
    for method in ("BCa", "percentile"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # BCa's degenerate-distribution warning: fall back
            res = stats.bootstrap((d,), np.mean, confidence_level=confidence, n_resamples=n_resamples,
                                  method=method, random_state=np.random.default_rng(seed))
        lo, hi = res.confidence_interval
        if np.isfinite(lo) and np.isfinite(hi):
            return float(lo), float(hi)
    return float("nan"), float("nan")


def wilcoxon_p(d: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p-value of the differences ``d`` (1 when all are zero)."""
    d = np.asarray(d, dtype=float)
    if len(d) == 0 or np.all(d == 0):
        return 1.0
    return float(stats.wilcoxon(d, zero_method="wilcox", alternative="two-sided").pvalue)


def summarise_pairs(diffs: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """One row per (k, Dice column) of :func:`paired_differences`; a Dice column is a family (:data:`FAMILY`).

    Columns: k, metric, pairs, mean_a, mean_b, mean_diff; ci_low, ci_high (the interval that
    inverts the sign-flip test, :func:`~medkit.eval.verdicts.signflip_interval`; nan below
    :data:`MIN_PAIRS`); boot_low, boot_high (BCa bootstrap, :func:`bootstrap_ci`); won, lost;
    wilcoxon_p; signflip_p (two-sided, exact up to 20 pairs); p_adjusted (Holm over the table's
    rows with at least :data:`MIN_PAIRS` pairs), family_size and verdict
    (:func:`~medkit.eval.verdicts.verdict`: ``B better`` / ``B worse`` / ``inside the noise`` /
    ``too few pairs``), all at level 1 - ``confidence``.
    """
    metrics = [c[:-5] for c in diffs.columns if c.endswith("|diff")]
    rows = []
    for k, part in diffs.groupby("k", sort=False):
        for mname in metrics:
            d = part[f"{mname}|diff"].to_numpy(dtype=float)
            lo, hi = signflip_interval(d, confidence)
            boot_lo, boot_hi = bootstrap_ci(d, confidence)
            rows.append({"k": k, "metric": mname, "pairs": len(d), "mean_a": part[f"{mname}|a"].mean(),
                         "mean_b": part[f"{mname}|b"].mean(), "mean_diff": d.mean(), "ci_low": lo, "ci_high": hi,
                         "boot_low": boot_lo, "boot_high": boot_hi, "won": int((d > 0).sum()),
                         "lost": int((d < 0).sum()), "wilcoxon_p": wilcoxon_p(d), "signflip_p": signflip_p(d)})
    return family_verdicts(pd.DataFrame(rows), 1 - confidence, by=FAMILY)


def compare_settings(results: pd.DataFrame, a: str, b: str,
                     confidence: float = 0.95) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Paired differences and their summary between two settings of one tidy table (a ``setting``
    column, as notebook 03 writes): B - A per pair, labelled ``"B - A"`` in a ``comparison`` column.
    Stacking several such summaries makes a new family: pass the stack to
    :func:`medkit.eval.verdicts.family_verdicts`."""
    for name in (a, b):
        if name not in set(results["setting"]):
            raise MedkitError(f"no setting {name!r} in the results; have {', '.join(results['setting'].unique())}")
    diffs = paired_differences(results[results["setting"] == a], results[results["setting"] == b])
    label = f"{b} - {a}"
    return diffs.assign(comparison=label), summarise_pairs(diffs, confidence).assign(comparison=label)


def compare_groups(results: pd.DataFrame, by: str, baseline=None,
                   confidence: float = 0.95) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every value of column ``by`` (a variant, a setting) against ``baseline`` (default: the first
    value in the table), pair by pair: the per-pair differences and their summaries, stacked, with
    a ``comparison`` column ``"<value> - <baseline>"``; each Dice column of the stack is one family (Holm)."""
    values = list(dict.fromkeys(results[by]))
    baseline = values[0] if baseline is None else baseline
    parts = [compare_settings(results.assign(setting=results[by]), baseline, v, confidence)
             for v in values if v != baseline]
    if not parts:
        raise MedkitError(f"only one {by} ({baseline!r}): nothing to compare")
    summary = family_verdicts(pd.concat([s for _, s in parts], ignore_index=True), 1 - confidence, by=FAMILY)
    return pd.concat([d for d, _ in parts], ignore_index=True), summary


def against_random(results: pd.DataFrame, confidence: float = 0.95) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every pretrained setting of a notebook-03 table (``setting``, ``init`` and ``protocol``
    columns) against random initialisation under the same protocol, pair by pair; the stacked
    summary is one family per Dice column (Holm)."""
    parts = []
    for protocol in dict.fromkeys(results["protocol"]):
        of = results[results["protocol"] == protocol]
        base = f"random, {protocol}"
        for setting in dict.fromkeys(of.loc[of["init"] != "random", "setting"]):
            if base in set(of["setting"]):
                parts.append(compare_settings(of, base, setting, confidence))
    if not parts:
        raise MedkitError("no pretrained setting with a random-initialisation baseline under the same protocol")
    summary = family_verdicts(pd.concat([s for _, s in parts], ignore_index=True), 1 - confidence, by=FAMILY)
    return pd.concat([d for d, _ in parts], ignore_index=True), summary


def sentences(summary: pd.DataFrame, metric: str = "dice_mean") -> list[str]:
    """One line per comparison and k of a summary: the mean difference, its 95 % interval, the
    pairs won, the sign-flip p with its Holm-adjusted value and family size, and the reading
    (better, worse, inside the noise, too few pairs). Tables written before the sign-flip test
    (no ``p_adjusted``) read as before."""
    return [_sentence(r) for _, r in summary[summary["metric"] == metric].iterrows()]


def _sentence(r: pd.Series) -> str:
    """One line of :func:`sentences`."""
    line = f"k={r['k']}, {r.get('comparison', 'B - A')}: {r['mean_diff']:+.3f} Dice"
    if np.isfinite(r["ci_low"]) and np.isfinite(r["ci_high"]):
        line += f" [95 % CI {r['ci_low']:+.3f}, {r['ci_high']:+.3f}]"
    line += f" over {r['pairs']} pairs, won {r['won']}/{r['pairs']}"
    if pd.notna(r.get("p_adjusted", np.nan)):
        line += (f", sign-flip p {r['signflip_p']:.2g}, Holm {r['p_adjusted']:.2g} in a family of "
                 f"{int(r['family_size'])}")
    return f"{line}: {r['verdict']}"

"""Paired statistics against values computed by hand."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from medkit.cli import main
from medkit.errors import MedkitError
from medkit.eval.paired import (against_random, bootstrap_ci, compare_groups, paired_differences, sentences,
                                summarise_pairs, wilcoxon_p)


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


def test_paired_differences_and_summary_by_hand():
    d = paired_differences(A, B)
    np.testing.assert_allclose(d["dice_mean|diff"], [0.10, 0.05, 0.05, 0.10], atol=1e-12)
    np.testing.assert_allclose(d["dice/LV|diff"], [0.10, 0.05, 0.05, 0.10], atol=1e-12)
    s = summarise_pairs(d).set_index("metric").loc["dice_mean"]
    assert s["pairs"] == 4 and s["won"] == 4 and s["lost"] == 0
    assert s["mean_a"] == pytest.approx(0.5125) and s["mean_b"] == pytest.approx(0.5875)
    assert s["mean_diff"] == pytest.approx(0.075)
    assert s["wilcoxon_p"] == pytest.approx(0.125)  # all 4 signs positive: exact two-sided 2 / 2**4
    assert 0.05 <= s["ci_low"] <= 0.075 <= s["ci_high"] <= 0.10
    assert s["verdict"] == "too few pairs"  # 4 pairs: no two-sided test at 5 % can reject (p >= 2 / 2**4)


def test_a_verdict_needs_six_pairs():
    scores_a = {(c, 0): (0.5, 0.5) for c in range(1, 7)}
    scores_b = {(c, 0): (0.5 + 0.01 * c, 0.5 + 0.01 * c) for c in range(1, 7)}
    s = summarise_pairs(paired_differences(_results(scores_a), _results(scores_b))).set_index("metric")
    assert s.loc["dice_mean", "pairs"] == 6 and s.loc["dice_mean", "verdict"] == "B better"
    assert s.loc["dice_mean", "wilcoxon_p"] == pytest.approx(2 / 2**6)
    worse = summarise_pairs(paired_differences(_results(scores_b), _results(scores_a))).set_index("metric")
    assert worse.loc["dice_mean", "verdict"] == "B worse"


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
    assert line.startswith("k=1, better - base: +0.075 Dice [95 % CI +0.0") and line.endswith("won 4/4: too few pairs")
    with pytest.raises(MedkitError, match="nothing to compare"):
        compare_groups(table[table["variant"] == "base"], "variant")


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

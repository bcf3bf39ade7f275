"""``python -m medkit compare RUN_A RUN_B [RUN_C ...]``: paired differences of few-label runs.

Each later run is compared with the first (the baseline, e.g. random initialisation) over the
same (k, combination, seed) pairs (:mod:`medkit.eval.paired`). The table, one row per run, label
budget and Dice column, is printed and written as CSV (``--out``) with the per-pair differences
beside it (``<out stem>_pairs.csv``).
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from medkit.engine.runs import check_below_folder, read_json
from medkit.errors import MedkitError
from medkit.eval.paired import FAMILY, paired_differences, summarise_pairs
from medkit.eval.verdicts import family_verdicts


def read_results(run: str | Path) -> pd.DataFrame:
    """The ``results.csv`` of a finished ``supervised`` or ``evaluate`` run folder."""
    path = Path(run) / "results.csv"
    if not path.is_file():
        raise MedkitError(f"{run}: no results.csv (not a finished supervised or evaluate run folder)")
    return pd.read_csv(path, dtype={"k": str})


def describe(run: str | Path) -> str:
    """A short label of a run: its method and protocol from ``params.json``, else its folder name."""
    try:
        p = read_json(Path(run) / "params.json")
    except (OSError, MedkitError):
        return Path(run).name
    if p.get("command") == "supervised":
        return f"{Path(run).name} (random init, supervised)"
    return f"{Path(run).name} ({p.get('method', '?')}, {p.get('eval_protocol', '?')})"


def compare_runs(baseline: str | Path, runs: list[str | Path], out: str | Path | None = None,
                 confidence: float = 0.95) -> pd.DataFrame:
    """Paired statistics of every run in ``runs`` against ``baseline``.

    Returns:
        the summary table (:func:`~medkit.eval.paired.summarise_pairs` per run, with columns
        ``a`` and ``b`` naming the two runs); written to ``out`` (CSV) when given, with the
        per-pair differences in ``<out stem>_pairs.csv``.
    """
    if not runs:
        raise MedkitError("compare needs a baseline run and at least one run to compare with it")
    if out:
        check_below_folder(out)
    base = read_results(baseline)
    tables, pairs = [], []
    for run in runs:
        try:
            diffs = paired_differences(base, read_results(run))
        except MedkitError as e:
            raise MedkitError(f"A = {baseline}, B = {run}: {e}") from None
        summary = summarise_pairs(diffs, confidence)
        summary.insert(0, "b", describe(run))
        summary.insert(0, "a", describe(baseline))
        tables.append(summary)
        pairs.append(diffs.assign(a=describe(baseline), b=describe(run)))
    table = family_verdicts(pd.concat(tables, ignore_index=True), 1 - confidence, by=FAMILY)  # a table: a family
    if out:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)  # checked below a folder before any work
        table.to_csv(out, index=False)
        pd.concat(pairs, ignore_index=True).to_csv(out.with_name(f"{out.stem}_pairs.csv"), index=False)
    return table


def format_comparison(table: pd.DataFrame, metric: str = "dice_mean") -> str:
    """A markdown table of one Dice column (one family of tests): per run and k, pairs, means, B - A [95 %
    interval of the sign-flip test], pairs won, the sign-flip p and its Holm-adjusted value."""
    rows = table[table["metric"] == metric]
    size = int(rows["family_size"].max()) if len(rows) else 0
    lines = [f"| A | B | k | pairs | A | B | B - A [95 % CI] | B won | sign-flip p | Holm p (family of {size}) "
             "| reading |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for _, r in rows.iterrows():
        lines.append(f"| {r['a']} | {r['b']} | {r['k']} | {r['pairs']} | {r['mean_a']:.3f} | {r['mean_b']:.3f} | "
                     f"{r['mean_diff']:+.3f} [{r['ci_low']:+.3f}, {r['ci_high']:+.3f}] | {r['won']}/{r['pairs']} | "
                     f"{r['signflip_p']:.3g} | {r['p_adjusted']:.3g} | {r['verdict']} |")
    return "\n".join(lines)

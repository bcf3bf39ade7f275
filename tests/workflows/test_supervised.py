"""Few-label runs: training seeds as a second axis of pairs, recorded per row."""
from __future__ import annotations

import pandas as pd

from medkit.cli import main


def test_seeds_and_extra_combinations_give_pairs(tmp_path):
    out = tmp_path / "run"
    assert main(["supervised", "--data", "phantom", "--labelled", "1", "--combos", "4", "--seeds", "0,1",
                 "--steps", "2", "--image-size", "32", "--val-every", "0", "--model", "unet-small",
                 "--out", str(out), "--quiet"]) == 0
    table = pd.read_csv(out / "results.csv")
    pairs = table.groupby(["combination", "seed"])["patients"].first()
    assert len(pairs) == 8 and set(table["seed"]) == {0, 1}
    assert pairs.xs(0, level="seed").tolist() == pairs.xs(1, level="seed").tolist()  # same volumes per seed
    assert (out / "k1_c4").is_dir() and (out / "k1_c4_s1").is_dir() and not (out / "k1_c4_s0").exists()

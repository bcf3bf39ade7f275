"""Few-label evaluation of pretrained runs, end to end from the command line."""
from __future__ import annotations

import json

from medkit.cli import main


def test_pretrain_then_evaluate_from_the_command_line(tmp_path, capsys):
    common = ["--data", "phantom", "--image-size", "32", "--val-every", "2", "--quiet"]
    assert main(["pretrain", "--method", "simclr", "--set", "channels=8,16,32,64", "--out", str(tmp_path / "p"),
                 "--steps", "3", *common]) == 0
    params = json.loads((tmp_path / "p" / "params.json").read_text())
    assert params["config"]["channels"] == [8, 16, 32, 64]
    for proto in ("linear", "finetune", "consistency"):
        out = tmp_path / proto
        assert main(["evaluate", "--checkpoint", str(tmp_path / "p"), "--eval-protocol", proto, "--labelled", "1",
                     "--combos", "1", "--steps", "3", "--out", str(out), *common]) == 0
        m = json.loads((out / "metrics.json").read_text())
        assert 0 <= m["by_k"]["1"]["mean"]["dice_mean"] <= 1
    assert main(["pretrain", "--method", "simclr", "--set", "tau=1", "--out", str(tmp_path / "q"), *common]) == 2
    assert "unknown option(s) tau" in capsys.readouterr().err and not (tmp_path / "q").exists()


def test_evaluate_settings_pairs_each_protocol_with_random_init(tmp_path):
    """Notebook 03's comparison: the pretrained run and random initialisation under each protocol,
    one tidy table with the same combinations and test cases on both sides."""
    from medkit.engine.config import TrainConfig
    from medkit.workflows.pretrain import pretrain
    from medkit.workflows.transfer import evaluate_settings
    cfg = TrainConfig(steps=2, batch_size=4, val_every=0, ckpt_every=2, device="cpu")
    pre = pretrain("simclr", "phantom", tmp_path / "p", cfg, {"channels": (8, 16, 32)}, image_size=32, progress=False)
    results, folders = evaluate_settings(pre, "simclr", "phantom", [1], ["linear", "finetune"], tmp_path, cfg,
                                         image_size=32, combos=1, progress=False)
    assert list(folders) == ["random, linear", "simclr, linear", "random, finetune", "simclr, finetune"]
    assert set(results["init"]) == {"random", "simclr"} and set(results["protocol"]) == {"linear", "finetune"}
    cases = results.groupby("setting")["case"].apply(lambda c: tuple(sorted(c)))
    assert cases.nunique() == 1 and results["dice_mean"].between(0, 1).all()
    again, _ = evaluate_settings(pre, "simclr", "phantom", [1], ["linear"], tmp_path, cfg, baseline=False,
                                 image_size=32, combos=1, progress=False)  # finished settings are read back
    assert set(again["setting"]) == {"simclr, linear"}

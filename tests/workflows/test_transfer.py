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


def test_random_baseline_has_the_pretrained_networks_architecture(tmp_path):
    """Random initialisation is compared like for like: the channels and the wide output map of the
    pretrained U-Net (Pix2Rep's out_width) are built into the baseline and recorded in its params."""
    from medkit.engine.config import TrainConfig
    from medkit.workflows.pretrain import pretrain
    from medkit.workflows.transfer import evaluate_settings, load_few_label_model
    cfg = TrainConfig(steps=2, batch_size=4, val_every=0, ckpt_every=2, device="cpu")
    pre = pretrain("pix2rep", "phantom", tmp_path / "p", cfg, {"channels": (8, 16, 32), "pixels": 32, "out_width": 12},
                   image_size=32, progress=False)
    _, folders = evaluate_settings(pre, "pix2rep", "phantom", [1], ["finetune"], tmp_path, cfg,
                                   image_size=32, combos=1, progress=False)
    params = json.loads((folders["random, finetune"] / "params.json").read_text())
    assert params["channels"] == [8, 16, 32] and params["out_width"] == 12
    for setting in ("random, finetune", "pix2rep, finetune"):
        net = load_few_label_model(folders[setting], "k1_c1", 4)
        assert net.out_width == 12 and net.channels == (8, 16, 32)

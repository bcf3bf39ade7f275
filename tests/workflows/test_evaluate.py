"""Few-label evaluation of pretrained runs, end to end from the command line."""
from __future__ import annotations

import json

from medkit.cli import main
from medkit.data.datasets import DataConfig
from medkit.engine.config import TrainConfig
from medkit.engine.spec import RunSpec
from medkit.workflows.supervised import FewLabelConfig


def _spec(method, options):
    return RunSpec(DataConfig("phantom", image_size=32), TrainConfig(steps=2, batch_size=4, val_every=0, ckpt_every=2,
                                                                     device="cpu"), method, options)


def test_pretrain_then_evaluate_from_the_command_line(tmp_path, capsys):
    common = ["--data", "phantom", "--image-size", "32", "--val-every", "2", "--quiet"]
    assert main(["pretrain", "--method", "simclr", "--set", "channels=8,16,32,64", "--out", str(tmp_path / "p"),
                 "--steps", "3", *common]) == 0
    params = json.loads((tmp_path / "p" / "params.json").read_text())
    assert params["config"]["channels"] == [8, 16, 32, 64]
    import numpy as np
    import pandas as pd
    import pytest
    import torch

    from medkit.data.datasets import load_dataset
    from medkit.engine.loading import load_few_label_model
    from medkit.eval.predict import predict_case
    test = load_dataset(DataConfig("phantom", image_size=32)).part("test")
    for proto in ("linear", "finetune", "consistency"):
        out = tmp_path / proto
        assert main(["evaluate", "--checkpoint", str(tmp_path / "p"), "--eval-protocol", proto, "--labelled", "1",
                     "--combos", "1", "--steps", "3", "--out", str(out), *common]) == 0
        m = json.loads((out / "metrics.json").read_text())
        # the mean Dice of metrics.json is the mean over test volumes of the Dice of the saved network's
        # predictions, recomputed with numpy: 2 |P & G| / (|P| + |G|) per class (1 when both are empty)
        net = load_few_label_model(out, "k1_c1", test.n_classes)
        rows = pd.read_csv(out / "results.csv").set_index("case")
        means = []
        for i, case in enumerate(test.cases):
            pred, truth = predict_case(net, test, i, torch.device("cpu")), np.asarray(test.native_labels[i])
            dice = [2 * ((pred == c) & (truth == c)).sum() / ((pred == c).sum() + (truth == c).sum())
                    if ((pred == c) | (truth == c)).any() else 1.0 for c in range(1, test.n_classes)]
            assert rows.loc[case, "dice_mean"] == pytest.approx(np.mean(dice), abs=1e-6), (proto, case)
            means.append(np.mean(dice))
        assert m["by_k"]["1"]["mean"]["dice_mean"] == pytest.approx(np.mean(means), abs=1e-6), proto
    assert main(["pretrain", "--method", "simclr", "--set", "tau=1", "--out", str(tmp_path / "q"), *common]) == 2
    assert "unknown option(s) tau" in capsys.readouterr().err and not (tmp_path / "q").exists()


def test_evaluate_settings_pairs_each_protocol_with_random_init(tmp_path):
    """Notebook 03's comparison: the pretrained run and random initialisation under each protocol,
    one tidy table with the same combinations and test cases on both sides."""
    from medkit.workflows.pretrain import pretrain
    from medkit.workflows.evaluate import evaluate_settings
    spec = _spec("simclr", {"channels": (8, 16, 32)})
    pre = pretrain(spec, tmp_path / "p", progress=False)
    results, folders = evaluate_settings(pre, spec, FewLabelConfig((1,), 1), ["linear", "finetune"], tmp_path,
                                         progress=False)
    assert list(folders) == ["random, linear", "simclr, linear", "random, finetune", "simclr, finetune"]
    assert set(results["init"]) == {"random", "simclr"} and set(results["protocol"]) == {"linear", "finetune"}
    cases = results.groupby("setting")["case"].apply(lambda c: tuple(sorted(c)))
    assert cases.nunique() == 1
    # each setting's rows: the Dice of its saved network's predictions, recomputed with numpy, and
    # their mean is the mean Dice of its metrics.json
    import numpy as np
    import pytest
    import torch

    from medkit.data.datasets import load_dataset
    from medkit.engine.loading import load_few_label_model
    from medkit.eval.predict import predict_case
    test = load_dataset(spec.data).part("test")
    for setting, folder in folders.items():
        net = load_few_label_model(folder, "k1_c1", test.n_classes)
        rows = results[results["setting"] == setting].set_index("case")["dice_mean"]
        for i, case in enumerate(test.cases):
            pred, truth = predict_case(net, test, i, torch.device("cpu")), np.asarray(test.native_labels[i])
            dice = [2 * ((pred == c) & (truth == c)).sum() / ((pred == c).sum() + (truth == c).sum())
                    if ((pred == c) | (truth == c)).any() else 1.0 for c in range(1, test.n_classes)]
            assert rows[case] == pytest.approx(np.mean(dice), abs=1e-6), (setting, case)
        mean = json.loads((folder / "metrics.json").read_text())["by_k"]["1"]["mean"]["dice_mean"]
        assert mean == pytest.approx(rows.mean(), abs=1e-9), setting
    again, _ = evaluate_settings(pre, spec, FewLabelConfig((1,), 1), ["linear"], tmp_path, baseline=False,
                                 progress=False)  # finished settings are read back
    assert set(again["setting"]) == {"simclr, linear"}


def test_random_baseline_has_the_pretrained_networks_architecture(tmp_path):
    """Random initialisation is compared like for like: the channels and the wide output map of the
    pretrained U-Net (Pix2Rep's out_width) are built into the baseline and recorded in its params."""
    from medkit.engine.loading import load_few_label_model
    from medkit.workflows.pretrain import pretrain
    from medkit.workflows.evaluate import evaluate_settings
    spec = _spec("pix2rep", {"channels": (8, 16, 32), "pixels": 32, "out_width": 12})
    pre = pretrain(spec, tmp_path / "p", progress=False)
    _, folders = evaluate_settings(pre, spec, FewLabelConfig((1,), 1), ["finetune"], tmp_path, progress=False)
    params = json.loads((folders["random, finetune"] / "params.json").read_text())
    assert params["channels"] == [8, 16, 32] and params["out_width"] == 12
    for setting in ("random, finetune", "pix2rep, finetune"):
        net = load_few_label_model(folders[setting], "k1_c1", 4)
        assert net.out_width == 12 and net.channels == (8, 16, 32)

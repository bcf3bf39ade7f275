from __future__ import annotations

import json

from medkit.cli import main


def test_supervised_end_to_end_on_phantom(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["supervised", "--data", "phantom", "--labelled", "1,2", "--combos", "1", "--steps", "6",
            "--image-size", "32", "--val-every", "3", "--model", "unet-small", "--out", str(out), "--quiet"]
    assert main(args) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert set(m["by_k"]) == {"1", "2"}
    d = m["by_k"]["1"]["mean"]
    assert "dice/left ventricle" in d
    assert (out / "k1_c1" / "model.pt").exists() and (out / "results.csv").exists()
    import numpy as np
    import pandas as pd
    import pytest
    import torch

    from medkit.data.datasets import DataConfig, load_dataset
    from medkit.engine.loading import load_few_label_model
    from medkit.eval.predict import predict_case
    rows = pd.read_csv(out / "results.csv", dtype={"k": str})
    for k in ("1", "2"):  # metrics.json: the mean over the test volumes of results.csv (one combination each)
        assert m["by_k"][k]["mean"]["dice_mean"] == pytest.approx(rows[rows["k"] == k]["dice_mean"].mean())
    # results.csv: the Dice of the saved network's predictions, recomputed with numpy, 2 |P & G| / (|P| + |G|)
    test = load_dataset(DataConfig("phantom", image_size=32)).part("test")
    net = load_few_label_model(out, "k1_c1", test.n_classes)
    rows = rows[rows["k"] == "1"].set_index("case")
    assert sorted(rows.index) == sorted(test.cases)
    for i, case in enumerate(test.cases):
        pred, truth = predict_case(net, test, i, torch.device("cpu")), np.asarray(test.native_labels[i])
        dice = {f"dice/{test.label_names[c]}": 2 * ((pred == c) & (truth == c)).sum()
                / ((pred == c).sum() + (truth == c).sum()) if ((pred == c) | (truth == c)).any() else 1.0
                for c in range(1, test.n_classes)}  # a class absent from both sides scores 1
        assert rows.loc[case, list(dice)].to_dict() == pytest.approx(dice, abs=1e-6), case
        assert rows.loc[case, "dice_mean"] == pytest.approx(np.mean(list(dice.values())), abs=1e-6), case
    # the same command again refuses to overwrite; --resume reuses the finished trainings
    before = (out / "k1_c1" / "metrics.json").read_bytes()
    assert main(args) == 2 and "pass --resume" in capsys.readouterr().err
    assert main(args + ["--resume"]) == 0
    assert (out / "k1_c1" / "metrics.json").read_bytes() == before


def test_option_mistakes_are_one_line(tmp_path, capsys):
    base = ["supervised", "--data", "phantom", "--out", str(tmp_path / "r"), "--steps", "1"]
    for extra, words in [(["--labelled", "one"], "--labelled takes"),
                         (["--labelled", "40"], "only 22 labelled training patients"),
                         (["--model", "vit"], "'vit' is not known"),
                         (["--device", "tpu"], "--device must be"),
                         (["--crop", "big"], "--crop takes an integer")]:
        assert main(base + extra) == 2, extra
        err = capsys.readouterr().err.strip()
        assert words in err and "\n" not in err, err
    assert not (tmp_path / "r").exists()


def test_defaults_come_from_the_library():
    from medkit.cli import _schedule, _spec, parser
    from medkit.data.datasets import DataConfig
    from medkit.workflows import schedules
    a = parser().parse_args(["pretrain", "--method", "simclr", "--data", "phantom", "--out", "x"])
    assert _schedule(a, schedules.PRETRAIN) == schedules.PRETRAIN
    spec = _spec(a, schedules.PRETRAIN, "simclr")
    assert spec.data == DataConfig("phantom", seed=schedules.PRETRAIN.seed) and spec.train == schedules.PRETRAIN
    a = parser().parse_args(["supervised", "--data", "phantom", "--out", "x", "--steps", "7", "--no-amp",
                             "--crop", "none", "--split", "random", "--seed", "3"])
    spec = _spec(a, schedules.FEW_LABEL)
    cfg = spec.train
    assert cfg.steps == 7 and not cfg.amp and cfg.lr == schedules.FEW_LABEL.lr and cfg.seed == 3
    assert spec.data == DataConfig("phantom", crop=None, split="random", seed=3)


def test_library_errors_read_as_flags_at_the_command_line():
    """The library names parameters; the command line says them as its flags, in one place."""
    from medkit.cli import _flag_names, as_flags, parser
    flags = _flag_names(parser())
    assert as_flags("batch_size 1 is too small", flags) == "--batch-size 1 is too small"
    assert as_flags("labelled 9: ask for some with combos=N", flags) == "--labelled 9: ask for some with --combos N"
    assert as_flags("check the data for constant images", flags) == "check the data for constant images"
    assert as_flags("a value of eval_protocol", flags) == "a value of --eval-protocol"
    assert as_flags("run/params.json: image_size: must be", flags) == "run/params.json: image_size: must be"
    assert as_flags("r: pass resume=True, or choose another out=FOLDER", flags) == "r: pass --resume, or choose another --out FOLDER"
    assert as_flags("overrides: not valid YAML", flags) == "--set: not valid YAML"


def test_old_spellings_still_work_with_a_deprecation_warning(capsys):
    from medkit.cli import parser
    a = parser().parse_args(["pretrain", "--method", "simclr", "--data", "phantom", "--out", "x",
                             "--protocol", "random"])
    assert a.split == "random" and "--protocol is deprecated here; use --split" in capsys.readouterr().err
    a = parser().parse_args(["evaluate", "--checkpoint", "random", "--data", "phantom", "--out", "x",
                             "--protocol", "finetune"])
    assert a.eval_protocol == "finetune" and "use --eval-protocol" in capsys.readouterr().err
    a = parser().parse_args(["evaluate", "--checkpoint", "random", "--data", "phantom", "--out", "x",
                             "--split", "random"])
    assert a.split == "random" and a.eval_protocol == "linear" and capsys.readouterr().err == ""


def test_operating_system_errors_are_one_line(tmp_path, capsys):
    """An --out below a file (not a directory) ends in one line naming the path, exit code 2."""
    blocker = tmp_path / "file.txt"
    blocker.write_text("keep me")
    code = main(["phantom", str(blocker / "data"), "--cases", "1", "--size", "32"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "Traceback" not in err
    assert err.startswith("medkit phantom: error: ") and "file.txt" in err and "not a folder" in err
    assert blocker.read_text() == "keep me"

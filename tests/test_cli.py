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
    assert 0 <= d["dice_mean"] <= 1 and "dice/left ventricle" in d
    assert (out / "k1_c1" / "model.pt").exists() and (out / "results.csv").exists()
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
    from medkit.cli import _data, _schedule, parser
    from medkit.data.datasets import DataConfig
    from medkit.workflows import schedules
    a = parser().parse_args(["pretrain", "--method", "simclr", "--data", "phantom", "--out", "x"])
    assert _schedule(a, schedules.PRETRAIN) == schedules.PRETRAIN
    d = DataConfig()
    assert _data(a) == {"image_size": d.image_size, "crop": d.crop, "frames": d.frames, "split": d.split}
    a = parser().parse_args(["supervised", "--data", "phantom", "--out", "x", "--steps", "7", "--no-amp",
                             "--crop", "none", "--split", "random"])
    cfg = _schedule(a, schedules.FEW_LABEL)
    assert cfg.steps == 7 and not cfg.amp and cfg.lr == schedules.FEW_LABEL.lr
    assert _data(a)["crop"] is None and _data(a)["split"] == "random"


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

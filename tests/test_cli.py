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

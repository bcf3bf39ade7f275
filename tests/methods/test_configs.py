"""Method configs check their ranges when built: one line naming the field."""
from __future__ import annotations

import pytest

from medkit.errors import MedkitError
from medkit.methods import METHODS, method_config


@pytest.mark.parametrize("method, key, value, words", [
    ("simclr", "temperature", "0", "temperature must be above 0"),
    ("simclr", "proj_dim", "-1", "proj_dim must be above 0"),
    ("simclr", "channels", "8", "channels needs at least 2 U-Net levels"),
    ("simclr", "channels", "8,0,16", "channels must be above 0"),
    ("moco_v2", "queue", "0", "queue must be above 0"),
    ("med_moco", "local_weight", "-0.5", "local_weight must be 0 or more"),
    ("pix2rep", "pixels", "0", "pixels must be above 0"),
    ("pix2rep", "proj_dims", "64,-2", "proj_dims must be above 0"),
    ("chaitanya", "n_neg", "0", "n_neg must be above 0"),
    ("ideal", "chunk", "-4", "chunk must be 0 or more"),
])
def test_out_of_range_options_are_named(method, key, value, words):
    with pytest.raises(MedkitError, match=words) as err:
        method_config(method, {key: value})
    assert "\n" not in str(err.value)


def test_every_default_config_is_in_range():
    for name in METHODS:
        method_config(name)


def test_image_size_must_fit_the_unet(tmp_path, capsys):
    from medkit.cli import main
    code = main(["pretrain", "--method", "simclr", "--set", "channels=8,8,8,8,8,8", "--data", "phantom",
                 "--image-size", "96", "--steps", "1", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "--image-size 96 must be a multiple of 64" in err and "\n" not in err
    assert not (tmp_path / "r").exists()

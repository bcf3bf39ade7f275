"""Method configs check their ranges when built: one line naming the field; configs written by
older versions are read through upgrade_config."""
from __future__ import annotations

import pytest

from medkit.errors import MedkitError
from medkit.methods import METHODS, build_method, method_config
from medkit.methods.registry import ADDED_LATER, upgrade_config


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
    ("chaitanya", "region_px", "0", "region_px must be above 0"),
    ("chaitanya", "decoder_level", "4", "decoder_level must be a decoder level 0..3"),
    ("med_moco", "region_fraction", "0", "region_fraction must be above 0"),
    ("med_moco", "region_fraction", "1.5", "region_fraction must be below 1"),
    ("med_moco", "encoder_level", "5", "encoder_level must be an encoder level 0..4"),
    ("med_moco", "whitening", "zac", "whitening must be one of 'none', 'zca', 'iternorm'"),
    ("med_moco", "whitening_groups", "0", "whitening_groups must be above 0"),
    ("ideal", "chunk", "-4", "chunk must be 0 or more"),
])
def test_out_of_range_options_are_named(method, key, value, words):
    with pytest.raises(MedkitError, match=words) as err:
        method_config(method, {key: value})
    assert "\n" not in str(err.value)


def test_every_default_config_is_in_range():
    import dataclasses
    for name, (_, cls, defaults) in METHODS.items():
        cfg = method_config(name)  # raises if a default is out of range
        assert cfg == cls(**defaults), name  # the config class's defaults, the registry's own on top
        assert cfg.temperature > 0 and len(cfg.channels) >= 2 and min(cfg.channels) > 0, name
    # Med-MoCo is MoCo v2's config with the local loss and ZCA whitening switched on, nothing else
    moco, med = method_config("moco_v2"), method_config("med_moco")
    assert (moco.local, moco.whitening, med.local, med.whitening) == (False, "none", True, "zca")
    assert dataclasses.replace(med, local=False, whitening="none") == moco


def test_image_size_must_fit_the_unet(tmp_path, capsys):
    from medkit.cli import main
    code = main(["pretrain", "--method", "simclr", "--set", "channels=8,8,8,8,8,8", "--data", "phantom",
                 "--image-size", "96", "--steps", "1", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "--image-size 96 must be a multiple of 64" in err and "\n" not in err
    assert not (tmp_path / "r").exists()


# the config a med_moco run wrote to params.json before the renames (JSON: tuples as lists)
OLD_MED_MOCO = {"channels": [16, 32, 64, 128, 256], "proj_hidden": 256, "proj_dim": 128, "queue": 4096,
                "momentum": 0.99, "temperature": 0.2, "crop_scale": [0.2, 1.0], "local": True, "local_weight": 0.5,
                "local_level": 0, "n_regions": 20, "region_size": 0.15, "zca": True, "whitening": "zca",
                "whitening_groups": 32}


@pytest.mark.parametrize("method, old, new", [
    ("chaitanya", {"local": True, "local_level": 1, "region_size": 2, "region_spacing": 3},
     {"local": True, "decoder_level": 1, "region_px": 2, "region_spacing": 3}),
    ("moco_v2", {"zca": True, "whitening": "iternorm", "local_level": 2, "region_size": 0.1},
     {"whitening": "iternorm", "encoder_level": 2, "region_fraction": 0.1}),
    ("moco_v2", {"zca": False, "whitening": "iternorm"}, {"whitening": "none"}),
    ("moco_v2", {"zca": True}, {"whitening": "zca"}),
    ("med_moco", {"zca": False, "whitening": "zca", "local_level": 1}, {"whitening": "none", "encoder_level": 1}),
    ("med_moco", {"zca": "false"}, {"whitening": "none"}),  # a string, as --set gives
    ("pix2rep", {"pixels": 64}, {"pixels": 64, "out_width": 0}),  # out_width was added later
])
def test_an_old_config_builds_the_config_of_its_new_names(method, old, new):
    assert method_config(method, upgrade_config(method, old)) == method_config(method, new)


def test_a_written_old_config_reads_as_today_and_builds():
    upgraded = {k: tuple(v) if isinstance(v, list) else v for k, v in upgrade_config("med_moco", OLD_MED_MOCO).items()}
    assert {"zca", "local_level", "region_size"}.isdisjoint(upgraded)
    assert method_config("med_moco", upgraded) == method_config("med_moco")  # the defaults did not change
    assert build_method("med_moco", upgraded).cfg.whitening == "zca"


def test_upgrade_leaves_todays_config_as_it_is_and_refuses_old_and_new_names():
    for name in METHODS:
        today = {**ADDED_LATER.get(name, {}), **vars(method_config(name))}
        assert upgrade_config(name, today) == today
    with pytest.raises(MedkitError, match="both region_size and its new name region_px"):
        upgrade_config("chaitanya", {"region_size": 3, "region_px": 3})


@pytest.mark.parametrize("method, old", [("med_moco", "zca"), ("moco_v2", "region_size"), ("chaitanya", "local_level")])
def test_old_names_are_unknown_options_outside_upgrade_config(method, old):
    with pytest.raises(MedkitError, match=rf"unknown option\(s\) {old}"):
        method_config(method, {old: "1"})

from __future__ import annotations

import json
import re
import shutil

import nibabel as nib
import numpy as np
import pytest

from medkit.cli import main
from medkit.data.datasets import DataConfig, load_dataset
from medkit.data.volumes import check_folder, load_folder
from medkit.errors import MedkitError


def test_acdc_loads(acdc_dir):
    vols, names = load_folder(acdc_dir, frames="ed")
    assert len(vols) == 100 and names == {0: "background", 1: "right ventricle", 2: "myocardium",
                                          3: "left ventricle"}
    v = vols[0]
    assert v.case_id == "patient001_frame01" and v.patient_id == "patient001"
    assert v.image.shape == v.label.shape == (10, 256, 216)  # (S, H, W)
    ds = load_dataset(DataConfig(str(acdc_dir), image_size=64))
    assert ds.split.name == "acdc-chaitanya"
    assert ds.slices.images.shape[1:] == (1, 64, 64)
    assert set(ds.part("test").patients) == set(ds.split.test)


def test_hippocampus_loads(hippo_dir):
    vols, names = load_folder(hippo_dir)
    assert len(vols) == 260 and names[2] == "posterior"
    assert all(v.label.shape == v.image.shape for v in vols[:5])
    ds = load_dataset(DataConfig(str(hippo_dir), image_size=32))
    assert ds.split.name.startswith("random") and ds.slices.n_classes == 3


def _copy(phantom_dir, tmp_path):
    d = tmp_path / "data"
    shutil.copytree(phantom_dir, d)
    return d


def _resave(path, arr):
    nib.save(nib.Nifti1Image(arr, np.eye(4)), str(path))


def _first(d, sub):
    return sorted((d / sub).glob("*.nii.gz"))[0]


BAD = {
    "missing file": (lambda d: _first(d, "labelsTr").unlink(), "file not found"),
    "shape mismatch": (lambda d: _resave(_first(d, "labelsTr"), np.zeros((5, 5, 5), np.uint8)),
                       "does not match image shape"),
    "non-integer labels": (lambda d: _resave(_first(d, "labelsTr"),
                                             np.asarray(nib.load(str(_first(d, "labelsTr"))).dataobj) + 0.5),
                           "must be integers"),
    "unknown labels": (lambda d: _resave(_first(d, "labelsTr"),
                                         np.asarray(nib.load(str(_first(d, "labelsTr"))).dataobj) * 3),
                       "unexpected label values"),
    "nan intensities": (lambda d: _resave(_first(d, "imagesTr"),
                                          np.full(nib.load(str(_first(d, "imagesTr"))).shape, np.nan, np.float32)),
                        "NaN or Inf"),
    "empty data set": (lambda d: (d / "dataset.json").write_text(json.dumps({"labels": {"0": "bg"}, "training": []})),
                       "empty"),
    "bad json": (lambda d: (d / "dataset.json").write_text("{"), "not valid JSON"),
    "json list": (lambda d: (d / "dataset.json").write_text("[1, 2]"), "the document: must be a JSON object"),
    "training not a list": (lambda d: (d / "dataset.json").write_text('{"training": 5}'),
                            "training: must be a list of .* got 5"),
    "image not a path": (lambda d: (d / "dataset.json").write_text('{"training": [{"image": 5}]}'),
                         r"training\[0\]\.image: must be a non-empty path, got 5"),
    "entry without image": (lambda d: (d / "dataset.json").write_text('{"training": [{"label": "a.nii.gz"}]}'),
                            r"training\[0\]: 'image' is a required property"),
    "label names not a mapping": (lambda d: (d / "dataset.json").write_text('{"labels": [1], "training": []}'),
                                  "labels: must be a mapping of integer label values to names"),
}


INDEX = {"bad json", "json list", "training not a list", "image not a path", "entry without image",
         "label names not a mapping", "empty data set"}  # the folder cannot be listed at all


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_named_in_one_line(case, phantom_dir, tmp_path, capsys):
    d = _copy(phantom_dir, tmp_path)
    spoil, words = BAD[case]
    spoil(d)
    with pytest.raises(MedkitError, match=words):
        load_folder(d)
    if case in INDEX:  # data-check cannot list the folder: one line on stderr, exit 2
        with pytest.raises(MedkitError, match=words):
            check_folder(d)
        assert main(["data-check", str(d)]) == 2
        err = capsys.readouterr().err.strip()
        assert re.search(words, err) and "\n" not in err
    else:  # a file's problem: data-check lists every one and exits 1
        rows, problems = check_folder(d)
        assert problems and any(re.search(words, p) for p in problems)
        assert main(["data-check", str(d)]) == 1
        assert re.search(words, capsys.readouterr().out)
    # the supervised command reports it in one line with exit code 2
    code = main(["supervised", "--data", str(d), "--out", str(tmp_path / "run"), "--steps", "1"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and re.search(words, err) and "\n" not in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_missing_folder(tmp_path, capsys):
    assert main(["data-check", str(tmp_path / "nope")]) == 2
    assert main(["supervised", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "r")]) == 2
    assert "no such folder" in capsys.readouterr().err


def test_data_check_passes_on_sound_data(phantom_dir, capsys):
    assert main(["data-check", str(phantom_dir)]) == 0
    out = capsys.readouterr().out
    assert "8 readable case(s), 0 problem(s)" in out and "phantom000_frame01" in out

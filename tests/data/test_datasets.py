from __future__ import annotations

import pytest

from medkit.data.datasets import DataConfig, load_dataset
from medkit.errors import MedkitError


def test_pretraining_pool_has_no_labels_and_no_test_patient():
    ds = load_dataset(DataConfig("phantom", image_size=32), phantom_subjects=12)
    pool = ds.part("pool")
    assert pool.labels is None and pool.native_labels is None
    assert not set(pool.patients) & (set(ds.split.test) | set(ds.split.val))
    assert set(ds.part("test").patients) == set(ds.split.test)


def test_acdc_default_protocol(acdc_dir):
    ds = load_dataset(DataConfig(str(acdc_dir), image_size=32))
    assert len(ds.slices.cases) == 100  # end-diastole only, one volume per patient
    assert all(c.endswith("frame01") for c in ds.slices.cases)
    assert {g.side for g in ds.slices.geometry} == {160}  # the centred 160 x 160 crop
    both = load_dataset(DataConfig(str(acdc_dir), image_size=32, frames="both"))
    assert len(both.slices.cases) == 200 and both.split == ds.split


def test_unknown_part_and_bad_options():
    ds = load_dataset(DataConfig("phantom", image_size=32), phantom_subjects=6)
    with pytest.raises(MedkitError, match="unknown part"):
        ds.part("training")
    with pytest.raises(MedkitError, match="frames must be"):
        load_dataset(DataConfig("phantom", frames="mid"))
    with pytest.raises(MedkitError, match="image_size must be a positive multiple of 32"):
        load_dataset(DataConfig("phantom", image_size=100))


def test_shared_data_is_found_beside_the_repository(tmp_path, monkeypatch):
    from pathlib import Path

    from medkit.data.datasets import shared_data
    monkeypatch.delenv("MEDKIT_SHARED_DATA", raising=False)
    beside = Path(__file__).resolve().parents[3] / "shared" / "data" / "acdc"  # ../shared next to the repo
    assert shared_data("acdc") == (beside if beside.is_dir() else None)
    (tmp_path / "acdc").mkdir()
    monkeypatch.setenv("MEDKIT_SHARED_DATA", str(tmp_path))
    assert shared_data("acdc") == tmp_path / "acdc"
    assert shared_data("nothing_of_that_name") is None

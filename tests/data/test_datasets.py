from __future__ import annotations

import pytest

from medkit.data.datasets import load_dataset
from medkit.errors import MedkitError


def test_pretraining_pool_has_no_labels_and_no_test_patient():
    ds = load_dataset("phantom", image_size=32, phantom_subjects=12)
    pool = ds.part("pool")
    assert pool.labels is None and pool.native_labels is None
    assert not set(pool.patients) & (set(ds.split.test) | set(ds.split.val))
    assert set(ds.part("test").patients) == set(ds.split.test)


def test_acdc_default_protocol(acdc_dir):
    ds = load_dataset(str(acdc_dir), image_size=32)
    assert len(ds.slices.cases) == 100  # end-diastole only, one volume per patient
    assert all(c.endswith("frame01") for c in ds.slices.cases)
    assert {g.side for g in ds.slices.geometry} == {160}  # the centred 160 x 160 crop
    both = load_dataset(str(acdc_dir), image_size=32, frames="both")
    assert len(both.slices.cases) == 200 and both.split == ds.split


def test_unknown_part_and_bad_options():
    ds = load_dataset("phantom", image_size=32, phantom_subjects=6)
    with pytest.raises(MedkitError, match="unknown part"):
        ds.part("training")
    with pytest.raises(MedkitError, match="frames must be"):
        load_dataset("phantom", frames="mid")
    with pytest.raises(MedkitError, match="image-size must be a positive multiple of 32"):
        load_dataset("phantom", image_size=100)

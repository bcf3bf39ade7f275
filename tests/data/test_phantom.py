from __future__ import annotations

import numpy as np
import pytest

from medkit.data.phantom import make_phantom, make_volume
from medkit.data.volumes import load_folder


def test_deterministic_per_seed():
    a, b = make_volume(3, seed=7), make_volume(3, seed=7)
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.label, b.label)
    c = make_volume(3, seed=8)
    assert a.image.shape != c.image.shape or not np.array_equal(a.image, c.image)


def test_subjects_differ_and_labels_are_acdc():
    vols = make_phantom(6, seed=0, frames="ed")
    assert len({v.image.shape[0] for v in vols} | {float(v.image.mean()) for v in vols}) > 1
    for v in vols:
        assert v.image.dtype == np.float32 and v.label.dtype == np.uint8
        assert v.image.shape == v.label.shape
        assert set(np.unique(v.label)) == {0, 1, 2, 3}
        assert np.isfinite(v.image).all() and 0 <= v.image.min() and v.image.max() <= 1


def test_anatomy_base_to_apex_and_phases():
    ed, es = make_volume(1, seed=0, es=False), make_volume(1, seed=0, es=True)
    lv = (ed.label == 3).sum(axis=(1, 2))
    rv = (ed.label == 1).sum(axis=(1, 2))
    assert lv[0] > lv[-2] and rv[0] > 0 and rv[-1] == 0  # ventricles shrink; no RV at the apex
    assert (es.label == 3).sum() < 0.8 * (ed.label == 3).sum()  # end-systole: smaller LV cavity
    assert ed.case_id.endswith("frame01") and es.case_id.endswith("frame02")
    # the LV cavity is enclosed by myocardium: no LV pixel touches the background
    lvm = ed.label == 3
    neigh = np.zeros_like(lvm)
    for ax in (1, 2):
        for sh in (-1, 1):
            neigh |= np.roll(lvm, sh, axis=ax)
    assert not (neigh & (ed.label == 0)).any()
    # blood is bright, myocardium dark: the contrast of a bSSFP cine slice
    assert ed.image[ed.label == 3].mean() > ed.image[ed.label == 2].mean() + 0.2


def test_cli_writes_decathlon_layout_the_loader_reads(phantom_dir):
    vols, names = load_folder(phantom_dir)
    assert len(vols) == 8 and names[3] == "left ventricle"
    mem = make_volume(0, seed=3, size=64)
    disk = next(v for v in vols if v.case_id == mem.case_id)
    np.testing.assert_allclose(disk.image, mem.image, atol=1e-6)
    np.testing.assert_array_equal(disk.label, mem.label)
    assert disk.patient_id == "phantom000" and disk.spacing == (3.75, 3.75, 10.0)  # 240 mm over 64 px


def test_heart_centred_field_of_view_like_the_acdc_crop():
    """The heart sits near the centre and covers a few percent of a mid slice, as in the 160-pixel crop."""
    for subject in range(6):
        v = make_volume(subject, seed=0, size=64)
        mid = v.label[len(v.label) // 2]
        ys, xs = np.nonzero(mid)
        assert abs(ys.mean() - 32) < 16 and abs(xs.mean() - 32) < 16
        assert 0.01 < (mid > 0).mean() < 0.2


def test_texture_trabeculations_and_papillary_muscles():
    v = make_volume(0, seed=0, size=128)
    img, lab = v.image, v.label
    mid = len(lab) // 2
    blood = img[mid][lab[mid] == 3]
    myo = img[mid][lab[mid] == 2]
    assert (blood < np.median(myo) + 0.1).mean() > 0.02  # dark trabeculae and papillary muscles in the cavity
    assert myo.std() > 0.03  # textured, not flat


def test_bright_unlabelled_blood_near_the_heart_at_the_base():
    """Atria and great vessels: bright, unlabelled, beside the heart in the basal slices of most subjects."""
    more_at_base = 0
    for subject in range(8):
        v = make_volume(subject, seed=0, size=128)
        img, lab = v.image, v.label
        mid = len(lab) // 2
        ys, xs = np.nonzero(lab[mid] == 3)
        yy, xx = np.mgrid[:128, :128]
        near = np.hypot(yy - ys.mean(), xx - xs.mean()) < 35
        bright = np.median(img[mid][lab[mid] == 3]) * 0.8
        count = [((img[s] > bright) & (lab[s] == 0) & near).sum() for s in (0, mid)]
        more_at_base += count[0] > 2 * count[1]
    assert more_at_base >= 4


def test_size_keeps_the_field_of_view():
    small, large = make_volume(4, seed=1, size=64), make_volume(4, seed=1, size=128)
    frac = [(v.label > 0).mean() for v in (small, large)]
    assert frac[0] == pytest.approx(frac[1], rel=0.1)
    assert small.spacing[0] == pytest.approx(2 * large.spacing[0])

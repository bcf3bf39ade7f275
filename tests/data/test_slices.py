from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from medkit.data.phantom import LABELS, make_phantom
from medkit.data.slices import make_slices, normalise


def test_slices_carry_metadata():
    vols = make_phantom(3, seed=0, frames="ed")
    s = make_slices(vols, LABELS, image_size=32, n_partitions=4)
    n = sum(v.image.shape[0] for v in vols)
    assert s.images.shape == (n, 1, 32, 32) and s.labels.shape == (n, 32, 32)
    assert 0 <= s.images.min() and s.images.max() <= 1
    first = s.case_index == 0
    assert s.position[first][0] == 0 and s.position[first][-1] == 1
    assert s.partition[first].tolist() == sorted(s.partition[first].tolist())
    assert set(s.partition.tolist()) == {0, 1, 2, 3}
    assert s.without_labels().labels is None
    sub = s.select_patients([vols[1].patient_id])
    assert sub.cases == (vols[1].case_id,) and len(sub) == vols[1].image.shape[0]


def test_to_native_inverts_the_preprocessing():
    """A label map pushed through crop/pad + resize and back lands on the native grid."""
    vols = make_phantom(1, seed=0, frames="ed", size=96)
    for crop in (None, 64, 128):  # pad to square, crop smaller, crop larger than the image
        s = make_slices(vols, LABELS, image_size=96 if crop is None else crop, crop=crop)
        imgs, labs = s.volume(0)
        logits = F.one_hot(labs, 4).permute(0, 3, 1, 2).float() * 10  # (S, 4, h, w)
        back = s.to_native(logits, 0).argmax(1).numpy()
        native = s.native_labels[0]
        if crop is None or crop >= 96:
            np.testing.assert_array_equal(back, native)
        else:  # outside the crop everything is background
            o = (96 - crop) // 2
            np.testing.assert_array_equal(back[:, o:o + crop, o:o + crop], native[:, o:o + crop, o:o + crop])
            assert (back[:, :o] == 0).all()


def test_volume_returns_slices_in_order():
    s = make_slices(make_phantom(2, seed=1, frames="ed"), LABELS, image_size=32)
    imgs, labs = s.volume(1)
    idx = torch.nonzero(s.case_index == 1).flatten()
    assert torch.equal(imgs, s.images[idx]) and torch.equal(labs, s.labels[idx])


def test_normalise_equals_monais_percentile_scaling():
    """medkit's per-volume scaling is MONAI's ScaleIntensityRangePercentiles(1, 99, 0, 1, clip=True)
    (kept by hand because it is about 10x faster on a CPU: docs/architecture.md, libraries leaned on)."""
    from monai.transforms import ScaleIntensityRangePercentiles
    x = np.random.default_rng(0).gamma(2.0, 50.0, size=(4, 40, 36)).astype(np.float32)
    ref = np.asarray(ScaleIntensityRangePercentiles(1, 99, 0.0, 1.0, clip=True)(x))
    np.testing.assert_allclose(normalise(x), ref, atol=1e-6)
    assert (normalise(np.full((2, 4, 4), 7.0)) == 0).all()  # constant volume: zeros, no division by zero

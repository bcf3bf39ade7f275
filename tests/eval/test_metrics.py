from __future__ import annotations

import numpy as np

from medkit.eval.metrics import dice_per_class, hd95_per_class


def test_dice_hand_computed():
    truth = np.zeros((2, 4, 4), np.uint8)
    pred = np.zeros_like(truth)
    truth[0, :2, :2] = 1          # 4 voxels of class 1
    pred[0, :2, :1] = 1           # 2 of them predicted
    pred[1, 0, 0] = 1             # 1 false positive on another slice
    truth[1, 2:, 2:] = 2          # class 2: 4 voxels, 3 predicted + 2 false positives
    pred[1, 2:, 2:] = 2
    pred[1, 3, 3] = 0
    pred[0, 3, :2] = 2
    # class 1: 2 |P&G| / (|P| + |G|) = 2*2 / (3 + 4); class 2: 2*3 / (5 + 4); class 3: absent in both
    np.testing.assert_allclose(dice_per_class(pred, truth, 4), [4 / 7, 6 / 9, 1.0], rtol=1e-6)


def test_hd95_on_a_shifted_square():
    truth = np.zeros((1, 20, 20), np.uint8)
    truth[0, 5:10, 5:10] = 1
    pred = np.roll(truth, 3, axis=2)  # shifted by 3 voxels
    h = hd95_per_class(pred, truth, 3)
    assert h[0] == 3.0 and np.isnan(h[1])  # class 2 absent: NaN, not a number made up

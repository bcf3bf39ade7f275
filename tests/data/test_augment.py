from __future__ import annotations

import torch

from medkit.data.augment import AugmentConfig, augment_segmentation, random_affine, warp


def test_identity_warp_and_label_values():
    x = torch.rand(2, 1, 16, 16)
    eye = torch.tensor([[1.0, 0, 0], [0, 1.0, 0]]).expand(2, 2, 3)
    torch.testing.assert_close(warp(x, eye), x)
    g = torch.Generator().manual_seed(0)
    lab = torch.randint(0, 4, (4, 32, 32))
    img, out = augment_segmentation(torch.rand(4, 1, 32, 32), lab, AugmentConfig(), g)
    assert img.shape == (4, 1, 32, 32) and out.dtype == torch.long
    assert set(out.unique().tolist()) <= {0, 1, 2, 3}


def test_affine_is_seeded_and_rotates():
    cfg = AugmentConfig(rotate=90, scale=(1, 1), translate=0, flip=False)
    a = random_affine(3, cfg, torch.Generator().manual_seed(1))
    b = random_affine(3, cfg, torch.Generator().manual_seed(1))
    torch.testing.assert_close(a, b)
    lin = a[:, :, :2]  # pure rotations: orthonormal, determinant 1
    torch.testing.assert_close(lin @ lin.transpose(1, 2), torch.eye(2).expand(3, 2, 2), atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.linalg.det(lin), torch.ones(3))

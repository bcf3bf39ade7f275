"""A synthetic short-axis cardiac cine-MRI phantom with ACDC's labels, generated in code.

The phantom is medkit's embedded default: it needs no download and no licence, and it is
deterministic per seed. Each subject gets its own anatomy (torso, subcutaneous fat, lungs,
liver, spine and aorta around a heart of random size, position and rotation); the ventricles
shrink from base to apex across the slices; end-diastole (ED, ``frame01``) and end-systole
(ES, ``frame02``) differ as in a real cine acquisition (smaller cavities, thicker myocardium);
each volume gets a smooth multiplicative bias field, a random contrast (gamma) and Rician noise.

Labels follow ACDC (Bernard et al., IEEE TMI 2018): 0 background, 1 right ventricle (RV
cavity), 2 myocardium (LV wall), 3 left ventricle (LV cavity).

Arrays are (S, H, W): slices first, base (s = 0) to apex (s = S - 1).

Example:
    >>> vols = make_phantom(n_subjects=2, seed=0)
    >>> vols[0].case_id, vols[0].image.shape == vols[0].label.shape
    ('phantom000_frame01', True)
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

from medkit.data.volumes import Volume

LABELS = {0: "background", 1: "right ventricle", 2: "myocardium", 3: "left ventricle"}
PHANTOM_SUBJECTS = 30  # the embedded default: 30 subjects (6 test, 2 validation, 22 training patients)
SPACING = (1.5, 1.5, 10.0)  # (x, y, z) in mm, close to ACDC's typical cine protocol


def _ellipse(yy: np.ndarray, xx: np.ndarray, cy: float, cx: float, ry: float, rx: float,
             angle: float = 0.0) -> np.ndarray:
    """Boolean mask (H, W) of a rotated ellipse with centre (cy, cx) and semi-axes (ry, rx)."""
    c, s = np.cos(angle), np.sin(angle)
    dy, dx = yy - cy, xx - cx
    u = c * dx + s * dy  # along the rotated x axis
    v = -s * dx + c * dy
    return (u / max(rx, 1e-3)) ** 2 + (v / max(ry, 1e-3)) ** 2 <= 1.0


def _subject(rng: np.random.Generator, size: int) -> dict[str, float]:
    """Draw one subject's anatomy: everything that is fixed across slices and phases."""
    c = size / 2
    return {
        "n_slices": int(rng.integers(8, 13)),
        # torso: centre, semi-axes, fat thickness
        "ty": c + rng.normal(0, 3), "tx": c + rng.normal(0, 3),
        "try": size * rng.uniform(0.36, 0.42), "trx": size * rng.uniform(0.5, 0.6),
        "fat": rng.uniform(3.0, 6.0),
        # heart: centre offset from torso centre, rotation, LV radius (px), wall thickness
        "hy": c + rng.normal(-2, 4), "hx": c + rng.normal(6, 5),
        "angle": rng.uniform(-0.5, 0.5),
        "r_lv": size * rng.uniform(0.08, 0.11), "wall": size * rng.uniform(0.03, 0.04),
        "rv_ry": rng.uniform(1.4, 1.8), "rv_rx": rng.uniform(0.6, 0.9),
        "ef": rng.uniform(0.25, 0.45),  # relative shrink of the cavities at end-systole
        # lungs, liver, spine
        "lung_ry": size * rng.uniform(0.17, 0.21), "lung_rx": size * rng.uniform(0.11, 0.14),
        "liver": rng.uniform(0.2, 0.5),
        # intensities: blood, myocardium, muscle, fat, liver, lung
        "i_blood": rng.uniform(0.8, 0.95), "i_myo": rng.uniform(0.22, 0.35),
        "i_muscle": rng.uniform(0.25, 0.4), "i_fat": rng.uniform(0.7, 0.9),
        "i_liver": rng.uniform(0.35, 0.5), "i_lung": rng.uniform(0.02, 0.08),
    }


def _slice(a: dict[str, float], p: float, es: bool, size: int,
           yy: np.ndarray, xx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Image and label (H, W) of one slice at relative position p (0 base .. 1 apex)."""
    img = np.zeros((size, size), np.float32)
    lab = np.zeros((size, size), np.uint8)
    # torso: fat ring, muscle, then the organs painted on top
    body = _ellipse(yy, xx, a["ty"], a["tx"], a["try"], a["trx"])
    inner = _ellipse(yy, xx, a["ty"], a["tx"], a["try"] - a["fat"], a["trx"] - a["fat"])
    img[body] = a["i_fat"]
    img[inner] = a["i_muscle"] + 0.1
    # lungs left and right of the heart, smaller towards the apex (diaphragm)
    lung_scale = 1.0 - 0.35 * p
    for side in (-1, 1):
        ly = a["ty"] - 4 + 6 * p
        lx = a["tx"] + side * a["trx"] * 0.5
        img[_ellipse(yy, xx, ly, lx, a["lung_ry"] * lung_scale, a["lung_rx"] * lung_scale,
                     side * 0.2) & inner] = a["i_lung"]
    # liver enters from the lower left towards the apex
    lv_r = a["try"] * (0.3 + a["liver"] * p)
    img[_ellipse(yy, xx, a["ty"] + a["try"] * 0.55, a["tx"] - a["trx"] * 0.45, lv_r, lv_r * 1.6)
        & inner] = a["i_liver"]
    # spine (vertebral body with a bright rim) and descending aorta, posterior
    sy, sx = a["ty"] + a["try"] * 0.7, a["tx"]
    img[_ellipse(yy, xx, sy, sx, 9, 9)] = 0.6
    img[_ellipse(yy, xx, sy, sx, 7, 7)] = 0.3
    img[_ellipse(yy, xx, sy - 13, sx - 9, 5, 5)] = a["i_blood"]
    # heart: sizes shrink from base to apex; at ES cavities shrink and the wall thickens
    taper = np.sqrt(max(1.0 - (0.9 * p) ** 2, 0.0))
    r_lv = a["r_lv"] * taper * ((1 - a["ef"]) if es else 1.0)
    wall = a["wall"] * ((1.35 if es else 1.0) * (0.8 + 0.2 * taper))
    r_epi = r_lv + wall
    c, s = np.cos(a["angle"]), np.sin(a["angle"])
    hy, hx = a["hy"], a["hx"]
    # RV: an ellipse on the LV's (image) left side, minus the LV epicardium -> a crescent
    rv_scale = max(1.0 - 1.1 * p, 0.0) * ((1 - 0.7 * a["ef"]) if es else 1.0)
    if rv_scale > 0.05:
        off = 0.55 * r_epi + a["r_lv"] * a["rv_rx"] * rv_scale * 0.9  # overlaps the LV: a crescent
        ry_c, rx_c = hy - s * off, hx - c * off
        rv_out = _ellipse(yy, xx, ry_c, rx_c, a["r_lv"] * a["rv_ry"] * rv_scale + 2.5,
                          a["r_lv"] * a["rv_rx"] * rv_scale * 1.4 + 2.5, a["angle"])
        rv = _ellipse(yy, xx, ry_c, rx_c, a["r_lv"] * a["rv_ry"] * rv_scale,
                      a["r_lv"] * a["rv_rx"] * rv_scale * 1.4, a["angle"])
        epi = _ellipse(yy, xx, hy, hx, r_epi + 1.5, r_epi + 1.5)
        img[rv_out & ~epi] = a["i_myo"] + 0.05  # thin RV free wall: grey, not labelled
        rv &= ~epi
        img[rv] = a["i_blood"]
        lab[rv] = 1
    epi = _ellipse(yy, xx, hy, hx, r_epi, r_epi * 1.05, a["angle"])
    endo = _ellipse(yy, xx, hy, hx, r_lv, r_lv * 1.08, a["angle"]) if r_lv > 1.0 else np.zeros_like(epi)
    img[epi] = a["i_myo"]
    lab[epi] = 2
    img[endo] = a["i_blood"]
    lab[endo] = 3
    # two papillary muscles: dark dots inside the LV cavity, labelled LV as in ACDC
    if r_lv > 6:
        for ang in (a["angle"] + 0.8, a["angle"] + 2.3):
            py, px = hy + 0.55 * r_lv * np.sin(ang), hx + 0.55 * r_lv * np.cos(ang)
            img[_ellipse(yy, xx, py, px, 1.8, 1.8) & endo] = a["i_myo"] + 0.1
    return img, lab


def make_volume(subject: int, seed: int = 0, es: bool = False, size: int = 160) -> Volume:
    """Generate one phantom volume.

    Args:
        subject: subject index; together with ``seed`` it fixes the anatomy.
        seed: dataset seed.
        es: end-systole (``frame02``) instead of end-diastole (``frame01``).
        size: in-plane size H = W in pixels (1.5 mm each).

    Returns:
        a :class:`Volume` with image (S, H, W) float32 and label (S, H, W) uint8.
    """
    anatomy = _subject(np.random.default_rng([seed, subject]), size)
    # the appearance (bias, gamma, noise) differs between the two frames, the anatomy does not
    rng = np.random.default_rng([seed, subject, 1 + int(es)])
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    n = int(anatomy["n_slices"])
    slices = [_slice(anatomy, k / (n - 1), es, size, yy, xx) for k in range(n)]
    img = np.stack([s[0] for s in slices])  # (S, H, W)
    lab = np.stack([s[1] for s in slices])  # (S, H, W)
    # tissue texture (low-frequency, fixed per subject) and partial volume at edges
    texture = gaussian_filter(rng.normal(0, 1, img.shape[1:]), 3.0)
    img = img * (1 + 0.8 * texture / (np.abs(texture).max() + 1e-6) * 0.15)[None]
    img = gaussian_filter(img, sigma=(0, 0.9, 0.9))
    # smooth multiplicative bias field: a random low-order polynomial, exponentiated
    u, v = (xx / size - 0.5), (yy / size - 0.5)
    coef = rng.normal(0, 0.6, 5)
    bias = np.exp(coef[0] * u + coef[1] * v + coef[2] * u * v + coef[3] * u**2 + coef[4] * v**2)
    img = img * bias[None]
    img = np.clip(img, 0, None) ** rng.uniform(0.7, 1.4)  # contrast change
    sigma = rng.uniform(0.02, 0.05)
    n1, n2 = rng.normal(0, sigma, img.shape), rng.normal(0, sigma, img.shape)
    img = np.sqrt((img + n1) ** 2 + n2**2)  # Rician noise, as in magnitude MR images
    img = (img / np.percentile(img, 99.5)).clip(0, 1).astype(np.float32)
    case = f"phantom{subject:03d}_frame{2 if es else 1:02d}"
    return Volume(case_id=case, patient_id=f"phantom{subject:03d}", image=img, label=lab,
                  spacing=SPACING)


def make_phantom(n_subjects: int = PHANTOM_SUBJECTS, seed: int = 0, frames: str = "both",
                 size: int = 160) -> list[Volume]:
    """Generate a phantom data set: ``n_subjects`` subjects with ED and/or ES volumes.

    Args:
        n_subjects: number of subjects (patients).
        seed: data set seed; the same seed always gives the same volumes.
        frames: ``"ed"``, ``"es"`` or ``"both"``.
        size: in-plane size in pixels.
    """
    if frames not in ("ed", "es", "both"):
        from medkit.errors import MedkitError
        raise MedkitError(f"frames must be 'ed', 'es' or 'both', got {frames!r}")
    phases = {"ed": [False], "es": [True], "both": [False, True]}[frames]
    return [make_volume(i, seed, es, size) for i in range(n_subjects) for es in phases]

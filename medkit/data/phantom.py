"""A synthetic short-axis cine-MRI phantom that looks like ACDC's heart-centred crop.

The field of view is a heart-centred square of 240 mm (160 pixels of 1.5 mm at the default size),
like the 160-pixel centred crop that medkit takes of an ACDC cine volume. Each subject draws its
own anatomy, fixed across slices and frames:

- **left ventricle (LV)**: a bright blood pool whose endocardial border is an irregular closed
  curve, with trabeculations (dark strands along the border) and two papillary muscles inside;
  both are labelled LV, as in ACDC's ground truth;
- **myocardium**: a dark, finely textured ring of varying thickness around the LV;
- **right ventricle (RV)**: a crescent wrapped around the septum whose angular extent, depth and
  thickness change from base to apex (it vanishes before the apex), with a thin unlabelled free wall;
- **surroundings**: chest wall (skin, subcutaneous fat, muscle) on the anterior side, lungs with
  bright vessels, epicardial fat, the descending aorta, spine, liver and stomach towards the apex,
  and at the base bright unlabelled atria and great vessels (the base's hardest confusion);
- **acquisition**: rendering at twice the resolution and averaging (partial volume at every
  boundary), a point-spread blur, a surface-coil sensitivity that falls off away from the chest,
  a random contrast (gamma), Rician noise and slice-to-slice misregistration (breath holds).

End-diastole (ED, ``frame01``) and end-systole (ES, ``frame02``) share the anatomy; at ES the
cavities shrink by the subject's ejection fraction and the wall thickens. Labels follow ACDC
(Bernard et al., IEEE TMI 2018): 0 background, 1 RV cavity, 2 myocardium, 3 LV cavity.
Arrays are (S, H, W): slices first, base (s = 0) to apex (s = S - 1). Deterministic per seed.

Geometry is written in "FOV units": a 160-unit square (1 unit = 1.5 mm), mapped onto ``size``
pixels, so that the anatomy is the same at every image size.

Example:
    >>> vols = make_phantom(n_subjects=2, seed=0, size=64)
    >>> vols[0].case_id, vols[0].image.shape[1:]
    ('phantom000_frame01', (64, 64))
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter

from medkit.data.volumes import Volume

LABELS = {0: "background", 1: "right ventricle", 2: "myocardium", 3: "left ventricle"}
PHANTOM_SUBJECTS = 30  # the embedded default: 30 subjects (6 test, 2 validation, 22 training patients)
SPACING = (1.5, 1.5, 10.0)  # (x, y, z) in mm at the default size of 160 pixels, close to ACDC's
FOV = 160.0  # field of view in units of 1.5 mm
SUPERSAMPLE = 2  # rendering grid per output pixel and axis (partial volume)


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Gaussian-smoothed white noise (H, W), scaled to unit standard deviation."""
    f = gaussian_filter(rng.normal(0, 1, shape), sigma, mode="wrap")
    return (f / (f.std() + 1e-8)).astype(np.float32)


def _wobble(rng: np.random.Generator, amp: float, orders: tuple[int, ...] = (2, 3, 4)) -> np.ndarray:
    """Coefficients (len(orders), 3) of a smooth angular deformation r(t) = 1 + sum a cos(n t + phi)."""
    return np.array([[n, rng.normal(0, amp / n), rng.uniform(0, 2 * np.pi)] for n in orders])


ANGLES = 1024  # angular resolution of the radial profiles (a lookup table per profile)


def _radial(t_index: np.ndarray, coef: np.ndarray) -> np.ndarray:
    """1 + sum_n a_n cos(n t + phi_n) at the angles of ``t_index`` (bins of 2 pi / ANGLES, any shape)."""
    t = np.linspace(-np.pi, np.pi, ANGLES, endpoint=False)
    table = 1 + sum(a * np.cos(n * t + phi) for n, a, phi in coef)
    return table.astype(np.float32)[t_index]


def _angle_diff(t: np.ndarray, centre: float) -> np.ndarray:
    """Signed angular difference t - centre wrapped to (-pi, pi]."""
    return (t - centre + np.pi) % (2 * np.pi) - np.pi


@dataclass(frozen=True)
class _Subject:
    """One subject's anatomy and appearance (FOV units): everything fixed across slices and frames."""

    n_slices: int
    rotation: float  # of the whole scene: the heart's axis varies between scans
    heart: np.ndarray  # LV centre (y, x)
    r_lv: float  # ED LV cavity radius at the base (22-36 mm)
    wall: float  # ED myocardial thickness (7.5-12 mm)
    lv_shape: np.ndarray  # _wobble coefficients of the endocardial border
    wall_shape: np.ndarray  # _wobble coefficients of the wall thickness
    rv_angle: float  # RV on the septal side (image left)
    rv_span: float  # half the RV's angular extent at the base
    rv_depth: float  # RV depth relative to the LV radius at the base
    rv_skew: float  # the crescent is thicker on one side
    rv_apex: float  # where along the stack the RV ends
    apex: float  # where the LV cavity ends
    ef: float  # cavity shrink at end-systole (ejection fraction)
    trab: float  # share of the endocardial band taken by trabeculations
    papillary: float  # angle of the first papillary muscle
    pap_r: float  # papillary muscle radius
    chest: float  # distance of the anterior skin from the heart
    skin_curve: float  # radius of curvature of the chest wall
    fat_ring: float  # subcutaneous fat thickness
    muscle_ring: float  # chest muscle thickness
    lung_gap: float  # mediastinal tissue between heart and lungs
    liver: float  # how far up the stack the liver reaches
    epi_fat: float  # epicardial fat thickness
    epi_fat_span: float  # its half angular extent
    epi_fat_angle: float  # its centre angle
    atria: float  # share of the stack (from the base) showing atria
    i_blood: float  # intensities: blood, myocardium, muscle, fat, liver, lung, mediastinum, stomach
    i_myo: float
    i_muscle: float
    i_fat: float
    i_liver: float
    i_lung: float
    i_media: float
    i_stomach: float
    jitter: float  # misregistration between breath holds


def _subject(rng: np.random.Generator) -> _Subject:
    """Draw one subject (the order of the draws fixes the phantom of each seed: keep it)."""
    return _Subject(
        n_slices=int(rng.integers(7, 13)), rotation=rng.normal(0.0, 0.6),
        heart=np.clip(rng.normal(0, 14, 2), -30, 30) + np.array([FOV * 0.50, FOV * 0.52]),
        r_lv=rng.uniform(13.0, 25.0), wall=rng.uniform(5.0, 8.0),
        lv_shape=_wobble(rng, 0.10), wall_shape=_wobble(rng, 0.25, (1, 2, 3)),
        rv_angle=np.pi + rng.normal(0, 0.25), rv_span=rng.uniform(0.55, 0.85) * np.pi,
        rv_depth=rng.uniform(0.6, 1.2), rv_skew=rng.normal(0, 0.3), rv_apex=rng.uniform(0.55, 0.8),
        apex=rng.uniform(0.8, 1.0), ef=rng.uniform(0.35, 0.6), trab=rng.uniform(0.1, 0.3),
        papillary=rng.uniform(0, 2 * np.pi), pap_r=rng.uniform(2.0, 3.5),
        chest=rng.uniform(45, 70), skin_curve=rng.uniform(120, 220),
        fat_ring=rng.uniform(3.0, 9.0), muscle_ring=rng.uniform(5.0, 12.0),
        lung_gap=rng.uniform(5.0, 14.0), liver=rng.uniform(0.3, 0.8),
        epi_fat=rng.uniform(1.0, 4.0), epi_fat_span=rng.uniform(0.1, 0.5) * np.pi,
        epi_fat_angle=rng.uniform(0, 2 * np.pi), atria=rng.uniform(0.15, 0.35),
        i_blood=rng.uniform(0.6, 0.95), i_myo=rng.uniform(0.18, 0.35),
        i_muscle=rng.uniform(0.2, 0.36), i_fat=rng.uniform(0.65, 0.95),
        i_liver=rng.uniform(0.3, 0.5), i_lung=rng.uniform(0.02, 0.08),
        i_media=rng.uniform(0.2, 0.5), i_stomach=rng.uniform(0.4, 0.8),
        jitter=rng.uniform(0.5, 2.0),
    )


@dataclass(frozen=True)
class _Textures:
    """Smooth noise fields (h, w) on the rendering grid, unit std: fixed per subject (the tissue)
    and per frame (the blood's flow pattern)."""

    lung: np.ndarray  # irregular lung borders
    vessels: np.ndarray  # pulmonary vessels, stomach contents
    fine: np.ndarray  # myocardial texture
    trab: np.ndarray  # trabeculations where above trab_cut
    blood: np.ndarray  # flow pattern of the blood pool (per frame)
    trab_cut: float  # the quantile of ``trab`` that leaves the subject's share of trabeculations


def _textures(rng: np.random.Generator, blood_rng: np.random.Generator, fine: int, step: float,
              trab: float) -> _Textures:
    """The textures on a ``fine`` x ``fine`` grid of ``step`` FOV units (``rng``: the subject's,
    ``blood_rng``: the frame's)."""
    shape = (fine, fine)
    lung, vessels = _smooth_noise(rng, shape, 10 / step), _smooth_noise(rng, shape, 1.2 / step)
    texture, strands = _smooth_noise(rng, shape, 0.7 / step), _smooth_noise(rng, shape, 1.5 / step)
    blood = _smooth_noise(blood_rng, shape, 4 / step)
    return _Textures(lung, vessels, texture, strands, blood, np.quantile(strands, 1 - trab))


@dataclass(frozen=True)
class _Scene:
    """One slice being drawn: subject, textures, position ``p`` (0 base .. 1 apex), phase, and the
    rendering grid in scene coordinates rotated about the LV centre (v: posterior, u: patient
    left) and polar ones (r, t; ``ti``: angle bins of the radial profiles)."""

    a: _Subject
    tex: _Textures
    p: float
    es: bool
    v: np.ndarray
    u: np.ndarray
    r: np.ndarray
    t: np.ndarray
    ti: np.ndarray


def _scene(a: _Subject, tex: _Textures, p: float, es: bool, yy: np.ndarray, xx: np.ndarray,
           shift: np.ndarray) -> _Scene:
    """Scene coordinates of the grid (yy, xx): rotated about the heart, which sits at ``a.heart``
    plus this slice's misregistration ``shift``."""
    cy, cx = a.heart + shift
    c, s = np.cos(a.rotation), np.sin(a.rotation)
    v, u = c * (yy - cy) - s * (xx - cx), s * (yy - cy) + c * (xx - cx)
    r, t = np.hypot(v, u), np.arctan2(v, u)  # t = 0 points to the image right
    ti = ((t + np.pi) * (ANGLES / (2 * np.pi))).astype(np.int32) % ANGLES
    return _Scene(a, tex, p, es, v, u, r, t, ti)


def _background(img: np.ndarray, sc: _Scene) -> None:
    """Paint lungs, aorta, spine, liver and stomach into ``img`` (in place)."""
    a, tex, p, v, u = sc.a, sc.tex, sc.p, sc.v, sc.u
    # lungs: left and right-posterior, bordered by a band of mediastinal tissue; smaller at the apex
    lung = np.zeros(img.shape, bool)
    for side in (-1.0, 1.0):  # each lung an ellipse with an irregular (noise-displaced) border
        lu, lv = side * (a.r_lv + a.wall + a.lung_gap + 16 + 6 * p), 10.0 + 8 * p
        lung |= np.hypot((u - lu) / (32 - 10 * p), (v - lv) / (42 - 12 * p)) * 40 + 6.0 * tex.lung < 40
    img[lung] = a.i_lung
    img[lung & (tex.vessels > 2.6)] = a.i_blood * 0.8  # bright pulmonary vessels
    # descending aorta and spine, posterior
    ay, ax = 48.0, 18.0
    img[np.hypot(v - ay, u - ax) < 8] = a.i_blood
    spine = np.hypot((v - 72) / 14, (u - 2) / 16) < 1
    img[spine] = 0.45
    img[np.hypot((v - 72) / 11, (u - 2) / 13) < 1] = 0.25
    # liver and stomach: inferior (lower left / lower right of the scene), rising towards the apex
    grow = p - (1 - a.liver)  # the liver rises under the heart's inferior wall, past the diaphragm
    if grow > 0:
        below = a.r_lv + a.wall + 6 - 10 * grow
        img[np.hypot((v - below - 30) / 45, (u + 25) / 60) < 0.55 + 0.6 * grow] = a.i_liver
    if p > 0.6:
        stom = np.hypot((v - 20) / 20, (u - 55) / 26) < (p - 0.6) * 2.2
        img[stom] = a.i_stomach * (0.8 + 0.4 * (tex.vessels[stom] > 0))


@dataclass(frozen=True)
class _Heart:
    """The ventricles of one slice: borders (h, w) and masks (h, w) on the rendering grid."""

    taper: float  # 1 at the base, 0 past the LV apex (a myocardial cap)
    r_endo: np.ndarray  # endocardial radius per pixel's angle
    myo: np.ndarray  # inside the epicardium (myocardium, and the LV cavity)
    lv: np.ndarray  # LV cavity
    rv: np.ndarray  # RV cavity
    rv_wall: np.ndarray | None  # the RV's unlabelled free wall; None where the RV has ended
    around: np.ndarray  # outer border of the ventricles (where epicardial fat starts)


def _heart(sc: _Scene) -> _Heart:
    """LV cavity, myocardium and RV, shrinking from base to apex; end-systole shrinks the cavities
    and thickens the wall. The RV is a crescent beyond the septum whose depth follows a cosine
    profile over its angular extent."""
    a, p, es, r = sc.a, sc.p, sc.es, sc.r
    taper = np.sqrt(np.clip(1.0 - (p / a.apex) ** 2, 0.0, 1.0))
    shrink = np.sqrt(1.0 - a.ef) if es else 1.0  # radius shrink for the volume to drop by ef
    r_endo = a.r_lv * taper * shrink * _radial(sc.ti, a.lv_shape)
    wall = a.wall * (1.4 if es else 1.0) * (0.75 + 0.25 * taper) * _radial(sc.ti, a.wall_shape)
    r_epi = np.maximum(r_endo, 0) + np.maximum(wall, 2.0)
    myo, lv = r < r_epi, r < r_endo
    rv_scale = np.clip(1.0 - p / a.rv_apex, 0.0, 1.0) ** 0.7 * ((1 - 0.6 * a.ef) if es else 1.0)
    if rv_scale <= 0.05:
        return _Heart(taper, r_endo, myo, lv, np.zeros_like(lv), None, r_epi + 0.0)
    dt = _angle_diff(sc.t, a.rv_angle + 0.3 * p)
    span = a.rv_span * (0.6 + 0.4 * rv_scale)
    prof = np.clip(np.cos(0.5 * np.pi * dt / span), 0, None) ** 0.8 * (1 + a.rv_skew * dt / span)
    depth = a.rv_depth * a.r_lv * rv_scale * np.clip(prof, 0, None)
    rv = (r >= r_epi) & (r < r_epi + depth) & (np.abs(dt) < span)
    rv_wall = (r >= r_epi) & (r < r_epi + depth + 2.0) & (np.abs(dt) < span * 1.08) & ~rv
    return _Heart(taper, r_endo, myo, lv, rv, rv_wall, r_epi + (depth + 2.0))


def _around_heart(img: np.ndarray, sc: _Scene, h: _Heart) -> None:
    """Paint the RV free wall, epicardial fat and, at the base, the bright unlabelled atria and
    great vessels beside the ventricles into ``img`` (in place)."""
    a, p, v, u, r = sc.a, sc.p, sc.v, sc.u, sc.r
    if h.rv_wall is not None:
        img[h.rv_wall] = a.i_myo * 1.1
    fat = (r >= h.around) & (r < h.around + a.epi_fat) & (np.abs(_angle_diff(sc.t, a.epi_fat_angle))
                                                          < a.epi_fat_span)
    img[fat] = a.i_fat
    if p < a.atria:
        k = 1.0 - p / a.atria
        for (dv, du, rad) in ((18, 10, 18), (-10, -30, 12), (-26, 4, 10), (-30, -22, 9)):
            blob = np.hypot(v - dv * (1 + 0.2 * k), u - du) < rad * (0.6 + 0.5 * k)
            img[blob & ~h.myo] = a.i_blood * 0.95


def _chambers(img: np.ndarray, lab: np.ndarray, sc: _Scene, h: _Heart) -> None:
    """Paint and label myocardium (2), RV (1) and LV (3) with its trabeculations (dark strands in
    the outer band of the cavity) and two papillary muscles (in place)."""
    a, tex, es, v, u = sc.a, sc.tex, sc.es, sc.v, sc.u
    img[h.myo] = a.i_myo * (1 + 0.12 * tex.fine[h.myo])
    lab[h.myo] = 2
    img[h.rv] = a.i_blood * (1 + 0.12 * tex.blood[h.rv])
    lab[h.rv] = 1
    if h.taper <= 0.05:
        return
    lv = h.lv
    img[lv] = a.i_blood * (1 + 0.12 * tex.blood[lv])
    band = lv & (sc.r > h.r_endo * (0.8 + 0.08 * es))
    img[band & (tex.trab > tex.trab_cut)] = a.i_myo * 1.2
    for dphi in (0.0, 2.1):
        ang = a.papillary + dphi
        py, px = 0.55 * h.r_endo.mean() * np.sin(ang), 0.55 * h.r_endo.mean() * np.cos(ang)
        img[lv & (np.hypot(v - py, u - px) < a.pap_r * (1 + 0.3 * es))] = a.i_myo * 1.15
    lab[lv] = 3


def _chest_wall(img: np.ndarray, lab: np.ndarray, sc: _Scene) -> None:
    """Paint the anterior chest wall (negative v): skin edge, subcutaneous fat, muscle; outside it
    is air. Nothing there is labelled (in place)."""
    a = sc.a
    d_skin = np.hypot(sc.v - (-a.chest - a.skin_curve), sc.u) - a.skin_curve  # < 0: outside the body
    img[(d_skin >= 0) & (d_skin < a.muscle_ring + a.fat_ring)] = a.i_muscle
    img[(d_skin >= 0) & (d_skin < a.fat_ring)] = a.i_fat
    img[d_skin < 0] = 0.0
    lab[d_skin < a.fat_ring + a.muscle_ring] = 0


def _slice(sc: _Scene) -> tuple[np.ndarray, np.ndarray]:
    """Image and label (h, w) on the rendering grid of one slice, painted back to front."""
    img = np.full(sc.r.shape, sc.a.i_media, np.float32)
    lab = np.zeros(sc.r.shape, np.uint8)
    heart = _heart(sc)
    _background(img, sc)
    _around_heart(img, sc, heart)
    _chambers(img, lab, sc, heart)
    _chest_wall(img, lab, sc)
    return img, lab


def _acquire(img: np.ndarray, a: _Subject, frame_rng: np.random.Generator) -> np.ndarray:
    """The acquisition of a volume (S, H, W) rendered with partial volume: point spread, a
    surface coil whose sensitivity falls off with distance from the chest, a contrast change
    (gamma), Rician noise, then scaling to [0, 1] at the 99.5th percentile."""
    size = img.shape[-1]
    img = gaussian_filter(img, sigma=(0, 0.5 * size / FOV * 1.2, 0.5 * size / FOV * 1.2))  # point spread
    c, s = np.cos(a.rotation), np.sin(a.rotation)
    oy, ox = a.heart
    ty, tx = oy - c * (a.chest + 25) + frame_rng.normal(0, 15), ox + s * (a.chest + 25) + frame_rng.normal(0, 25)
    py, px = (np.mgrid[0:size, 0:size] + 0.5) * (FOV / size)
    dist = np.hypot(py - ty, px - tx)
    coil = 0.2 + np.exp(-dist / frame_rng.uniform(70, 140))
    img = img * (coil / coil.max())[None]
    img = np.clip(img, 0, None) ** frame_rng.uniform(0.6, 1.5)  # contrast change
    sigma = frame_rng.uniform(0.02, 0.08)
    n1, n2 = frame_rng.normal(0, sigma, img.shape), frame_rng.normal(0, sigma, img.shape)
    img = np.sqrt((img + n1) ** 2 + n2**2)  # Rician noise, as in magnitude MR images
    return (img / np.percentile(img, 99.5)).clip(0, 1).astype(np.float32)


def make_volume(subject: int, seed: int = 0, es: bool = False, size: int = 160) -> Volume:
    """Generate one phantom volume.

    Args:
        subject: subject index; together with ``seed`` it fixes the anatomy.
        seed: dataset seed.
        es: end-systole (``frame02``) instead of end-diastole (``frame01``).
        size: in-plane size H = W in pixels (the 240 mm field of view at any size).

    Returns:
        a :class:`Volume` with image (S, H, W) float32 in [0, 1] and label (S, H, W) uint8.
    """
    rng = np.random.default_rng([seed, subject])
    a = _subject(rng)
    n = a.n_slices
    fine = size * SUPERSAMPLE
    step = FOV / fine
    yy, xx = (np.mgrid[0:fine, 0:fine].astype(np.float32) + 0.5) * step  # FOV units
    tex = _textures(rng, np.random.default_rng([seed, subject, 7 + int(es)]), fine, step, a.trab)
    shifts = rng.normal(0, a.jitter, (n, 2))  # misregistration per slice, same at ED and ES
    slices = [_slice(_scene(a, tex, k / (n - 1), es, yy, xx, shifts[k])) for k in range(n)]
    hi = np.stack([s[0] for s in slices])  # (S, fine, fine)
    mid = SUPERSAMPLE // 2
    lab = np.stack([s[1][mid::SUPERSAMPLE, mid::SUPERSAMPLE] for s in slices])  # (S, H, W): at pixel centres
    img = hi.reshape(n, size, SUPERSAMPLE, size, SUPERSAMPLE).mean(axis=(2, 4))  # partial volume
    img = _acquire(img, a, np.random.default_rng([seed, subject, 1 + int(es)]))  # frames differ in appearance
    case = f"phantom{subject:03d}_frame{2 if es else 1:02d}"
    return Volume(case_id=case, patient_id=f"phantom{subject:03d}", image=img, label=lab.astype(np.uint8),
                  spacing=(SPACING[0] * 160 / size, SPACING[1] * 160 / size, SPACING[2]))


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

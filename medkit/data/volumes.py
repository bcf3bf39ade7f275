"""Read 3D volumes from a Decathlon-layout folder and check them.

Layout (Medical Segmentation Decathlon): ``DIR/dataset.json`` listing ``{"image", "label"}``
pairs and naming the labels, or, without ``dataset.json``, ``DIR/imagesTr/*.nii.gz`` with
same-named files in ``DIR/labelsTr/``. Arrays are returned as (S, H, W): the last NIfTI axis
(the slice axis of a 2D acquisition) comes first.

Every problem a user can cause (missing folder or file, shape mismatch, non-integer or unknown
label values, NaN/Inf intensities, empty data set) raises :class:`~medkit.errors.MedkitError`
with the file and the problem in one line; :func:`check_folder` collects all of them instead.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from monai.data import load_decathlon_datalist

from medkit.errors import MedkitError, check_schema

_FRAME = re.compile(r"^(?P<patient>.+?)_frame(?P<frame>\d+)$")


@dataclass(frozen=True)
class Volume:
    """One 3D volume in memory.

    Attributes:
        case_id: file stem, e.g. ``patient001_frame01``.
        patient_id: the patient, e.g. ``patient001`` (several cases may share one).
        image: float32 (S, H, W), raw intensities (normalised later, per volume).
        label: uint8 (S, H, W) or None for unlabelled data.
        spacing: voxel size (x, y, z) from the header.
    """

    case_id: str
    patient_id: str
    image: np.ndarray
    label: np.ndarray | None
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)

    @property
    def frame(self) -> int | None:
        """Cine frame number from a ``_frameNN`` suffix (ACDC: 1 = ED, 2 = ES), else None."""
        m = _FRAME.match(self.case_id)
        return int(m["frame"]) if m else None


FRAMES = {"ed": {1}, "es": {2}, "both": None}  # ACDC's naming: frame01 end-diastole, frame02 end-systole


def keeps_frame(case_id: str, frames: str) -> bool:
    """Whether ``frames`` (``"ed"``, ``"es"`` or ``"both"``) keeps case ``case_id``; cases without a
    ``_frameNN`` suffix are always kept."""
    if frames not in FRAMES:
        raise MedkitError(f"frames must be 'ed', 'es' or 'both', got {frames!r}")
    m = _FRAME.match(case_id)
    return FRAMES[frames] is None or m is None or int(m["frame"]) in FRAMES[frames]


def patient_of(case_id: str) -> str:
    """Patient id of a case: ``patient001_frame01`` -> ``patient001``; otherwise the case id."""
    m = _FRAME.match(case_id)
    return m["patient"] if m else case_id


def _stem(path: Path) -> str:
    name = path.name
    for ext in (".nii.gz", ".nii"):
        if name.endswith(ext):
            return name[: -len(ext)]
    return path.stem


@dataclass(frozen=True)
class Pair:
    """An image file and its label file (None when the data set has no labels)."""

    case_id: str
    image: Path
    label: Path | None


DATASET_SCHEMA = {  # the fields of a Decathlon dataset.json that medkit reads; others are kept as found
    "type": "object", "description": "a JSON object (the Decathlon dataset.json)",
    "properties": {
        "labels": {"type": "object", "description": "a mapping of integer label values to names",
                   "propertyNames": {"pattern": "^[0-9]+$", "description": "an integer label value"},
                   "additionalProperties": {"type": "string", "description": "a label name (a string)"}},
        "training": {
            "type": "array", "description": 'a list of {"image": path, "label": path} objects',
            "items": {"type": "object", "description": 'an {"image": path, "label": path} object',
                      "required": ["image"],
                      "properties": {"image": {"type": "string", "minLength": 1, "description": "a non-empty path"},
                                     "label": {"type": ["string", "null"], "description": "a path or null"}}}},
        "numTraining": {"type": "integer", "minimum": 0, "description": "a count (an integer, 0 or more)"},
    },
}


def read_index(root: str | Path) -> tuple[list[Pair], dict[int, str] | None]:
    """List the (image, label) pairs of a Decathlon folder and its label names.

    ``dataset.json`` is checked against :data:`DATASET_SCHEMA` first; its 'training' paths are
    joined to ``root`` by MONAI's ``load_decathlon_datalist``.

    Raises:
        MedkitError: missing folder, unreadable or malformed ``dataset.json``, or no image at all.
    """
    root = Path(root)
    if not root.is_dir():
        raise MedkitError(f"{root}: no such data folder" if not root.exists() else f"{root}: not a folder")
    meta = root / "dataset.json"
    names: dict[int, str] | None = None
    if meta.exists():
        try:
            info = json.loads(meta.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise MedkitError(f"{meta}: not valid JSON ({e})") from None
        check_schema(info, DATASET_SCHEMA, str(meta))
        if "labels" in info:
            names = {int(k): v for k, v in info["labels"].items()}
        entries = load_decathlon_datalist(meta, is_segmentation=True, data_list_key="training",
                                          base_dir=root) if info.get("training") else []
        pairs = []
        for e in entries:
            img = Path(e["image"]).resolve()
            lab = Path(e["label"]).resolve() if e.get("label") else None
            pairs.append(Pair(_stem(img), img, lab))
    else:
        img_dir = root / "imagesTr"
        if not img_dir.is_dir():
            raise MedkitError(f"{root}: neither dataset.json nor imagesTr/ found (Decathlon layout)")
        lab_dir = root / "labelsTr"
        pairs = []
        for img in sorted(img_dir.glob("*.nii*")):
            lab = lab_dir / img.name
            pairs.append(Pair(_stem(img), img, lab if lab_dir.is_dir() else None))
    if not pairs:
        raise MedkitError(f"{root}: the data set is empty (no image listed or found)")
    return pairs, names


def load_pair(pair: Pair, label_names: dict[int, str] | None = None) -> Volume:
    """Load and check one (image, label) pair.

    Raises:
        MedkitError: missing or unreadable file, NaN/Inf intensities, image/label shape
            mismatch, non-integer label values, or values not in ``label_names``.
    """
    image = _read(pair.image)
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3:
        raise MedkitError(f"{pair.image}: expected a 3D volume, got shape {image.shape}")
    if not np.isfinite(image).all():
        bad = int((~np.isfinite(image)).sum())
        raise MedkitError(f"{pair.image}: {bad} voxels are NaN or Inf")
    spacing = tuple(float(z) for z in nib.load(str(pair.image)).header.get_zooms()[:3])
    spacing = (spacing + (1.0, 1.0, 1.0))[:3]
    label = None
    if pair.label is not None:
        raw = _read(pair.label)
        if raw.ndim == 2:
            raw = raw[..., None]
        if raw.shape != image.shape:
            raise MedkitError(f"{pair.label}: label shape {raw.shape} does not match image shape "
                              f"{image.shape} of {pair.image.name}")
        if not np.isfinite(raw).all() or not np.array_equal(raw, np.round(raw)):
            raise MedkitError(f"{pair.label}: label values must be integers")
        values = set(np.unique(raw).astype(int).tolist())
        allowed = set(label_names) if label_names else set(range(256))
        if not values <= allowed:
            raise MedkitError(f"{pair.label}: unexpected label values {sorted(values - allowed)} "
                              f"(dataset.json names {sorted(allowed)})")
        label = np.moveaxis(raw, -1, 0).astype(np.uint8)
    return Volume(pair.case_id, patient_of(pair.case_id),
                  np.moveaxis(image, -1, 0).astype(np.float32), label, spacing)  # (S, H, W)


def _read(path: Path) -> np.ndarray:
    if not path.exists():
        raise MedkitError(f"{path}: file not found (listed in dataset.json or expected beside its image)")
    try:
        return np.asarray(nib.load(str(path)).dataobj, dtype=np.float32)
    except Exception as e:  # nibabel raises many types for corrupt files
        raise MedkitError(f"{path}: cannot be read as NIfTI ({type(e).__name__}: {e})") from None


def load_folder(root: str | Path, frames: str = "both") -> tuple[list[Volume], dict[int, str]]:
    """Load every volume of a Decathlon folder, stopping at the first problem.

    Args:
        root: the folder.
        frames: ``"ed"`` keeps only ``_frame01`` cases (ACDC's end-diastole), ``"es"`` only
            ``_frame02``, ``"both"`` all; cases without a frame suffix are always kept.

    Returns:
        the volumes and the label names ({0: "background", ...}).
    """
    keeps_frame("", frames)  # a bad option fails before any file is read
    pairs, names = read_index(root)
    vols = [load_pair(p, names) for p in pairs if keeps_frame(p.case_id, frames)]
    if not vols:
        raise MedkitError(f"{root}: no volume left after selecting frames={frames!r}")
    if names is None:
        values = sorted({int(v) for vol in vols if vol.label is not None for v in np.unique(vol.label)})
        names = {v: ("background" if v == 0 else f"class {v}") for v in values}
    return vols, names


def check_folder(root: str | Path) -> tuple[list[dict], list[str]]:
    """Check every file of a Decathlon folder; collect all problems instead of stopping.

    Returns:
        one summary dict per readable case (case, shape, spacing, label values) and the list
        of problems (empty when the folder is sound).

    Raises:
        MedkitError: the folder cannot be listed (:func:`read_index`).
    """
    pairs, names = read_index(root)
    rows, problems = [], []
    for p in pairs:
        try:
            v = load_pair(p, names)
        except MedkitError as e:
            problems.append(str(e))
            continue
        rows.append({"case": v.case_id, "shape": tuple(v.image.shape), "spacing": v.spacing,
                     "labels": sorted(np.unique(v.label).astype(int).tolist()) if v.label is not None else None})
    return rows, problems

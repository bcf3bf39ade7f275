"""Write the built-in phantom to disk in the Decathlon layout (``python -m medkit phantom``)."""
from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from medkit.data.phantom import LABELS, PHANTOM_SUBJECTS, make_phantom
from medkit.engine.runs import check_below_folder, removed_on_failure, write_json
from medkit.errors import MedkitError


MIN_SIZE = 32  # in-plane pixels: below this the myocardium and the right ventricle vanish


def write_phantom(out: str | Path, cases: int = PHANTOM_SUBJECTS, seed: int = 0, frames: str = "both",
                  size: int = 160) -> int:
    """Write ``cases`` phantom subjects (end-diastole and/or end-systole volumes) as NIfTI files
    under ``out/imagesTr`` and ``out/labelsTr`` with a ``dataset.json``; returns the number of
    volumes. The slice axis is the last NIfTI axis, as in ACDC.

    Args:
        out: a new or empty folder (an existing non-empty one is refused, nothing is changed).
        cases: subjects; seed: the phantom's seed; frames: ``"ed"``, ``"es"`` or ``"both"``;
        size: in-plane size in pixels.
    """
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise MedkitError(f"{out}: exists and is not an empty folder; choose another (nothing was changed)")
    if cases < 1:
        raise MedkitError(f"cases must be at least 1, got {cases}")
    if size < MIN_SIZE:
        raise MedkitError(f"size must be at least {MIN_SIZE} pixels (smaller phantoms lose their structures), "
                          f"got {size}")
    check_below_folder(out, "the folder")
    vols = make_phantom(cases, seed=seed, frames=frames, size=size)
    with removed_on_failure(out):  # a half-written folder would be refused by the corrected rerun
        (out / "imagesTr").mkdir(parents=True)
        (out / "labelsTr").mkdir()
        entries = []
        for v in vols:
            affine = np.diag([*v.spacing, 1.0])
            for sub, arr in (("imagesTr", v.image), ("labelsTr", v.label)):
                nib.save(nib.Nifti1Image(np.moveaxis(arr, 0, -1), affine), str(out / sub / f"{v.case_id}.nii.gz"))
            entries.append({"image": f"./imagesTr/{v.case_id}.nii.gz", "label": f"./labelsTr/{v.case_id}.nii.gz"})
        write_json(out / "dataset.json", {
            "name": "medkit-phantom", "description": f"synthetic cine-MRI phantom, seed {seed}",
            "modality": {"0": "cine-MRI (synthetic)"}, "labels": {str(k): v for k, v in LABELS.items()},
            "numTraining": len(entries), "training": entries})
    return len(vols)

"""Load a data set by name or path: ``"phantom"`` (built in) or a Decathlon folder."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from medkit.data.phantom import LABELS as PHANTOM_LABELS
from medkit.data.phantom import PHANTOM_SUBJECTS, make_phantom
from medkit.data.slices import SliceSet, check_image_size, make_slices
from medkit.data.splits import Split, split_for
from medkit.data.volumes import keeps_frame, load_folder
from medkit.errors import MedkitError


def shared_data(name: str) -> Path | None:
    """The real data set ``name`` (``"acdc"``, ``"msd_hippocampus"``) beside the project, if present.

    Looked up in ``$MEDKIT_SHARED_DATA`` and then in ``../shared/data`` next to the repository.
    """
    roots = [os.environ.get("MEDKIT_SHARED_DATA"), Path(__file__).resolve().parents[3] / "shared" / "data"]
    for root in roots:
        if root and (Path(root) / name).is_dir():
            return Path(root) / name
    return None


@dataclass(frozen=True)
class DataConfig:
    """How a data set is read into slices and split: the defaults of every command and workflow.

    Attributes:
        image_size: working in-plane size in pixels (a multiple of the U-Net's stride, 32).
        crop: centred crop in native pixels, None for none, or ``"auto"``: 160 for cine folders
            (``_frameNN`` cases, like ACDC: the heart lies inside that crop in 195 of 200 ACDC
            volumes), none otherwise.
        frames: ``"ed"``, ``"es"`` or ``"both"``: the frames of labelled training, validation and
            test (cine data; other data keep every volume). Chaitanya et al.: end-diastole.
        pool_frames: the frames of the unlabelled pretraining pool (of the pool's patients only,
            never a test or validation patient): ``"both"`` doubles the pool of cine data.
        split: split protocol, ``"auto"``, ``"acdc"`` or ``"random"``
            (:func:`~medkit.data.splits.split_for`).
    """

    image_size: int = 128
    crop: int | None | str = "auto"
    frames: str = "ed"
    pool_frames: str = "both"
    split: str = "auto"


@dataclass(frozen=True)
class Dataset:
    """Slices of a whole data set with its patient-level split."""

    name: str
    slices: SliceSet
    split: Split
    pool_slices: SliceSet | None = None  # the pool's frames, when they differ from ``slices``

    def part(self, which: str) -> SliceSet:
        """``"test"``, ``"val"``, ``"train"`` (labelled) or ``"pool"`` (unlabelled: no labels)."""
        if which == "pool":
            source = self.slices if self.pool_slices is None else self.pool_slices
            return source.without_labels().select_patients(self.split.pool)  # labels dropped first
        if which not in ("test", "val", "train"):
            raise MedkitError(f"unknown part {which!r}; use test, val, train or pool")
        return self.slices.select_patients(getattr(self.split, which))


def load_dataset(data: str, image_size: int = DataConfig.image_size, crop: int | None | str = DataConfig.crop,
                 frames: str = DataConfig.frames, seed: int = 0, split: str = DataConfig.split,
                 n_partitions: int = 4, phantom_subjects: int = PHANTOM_SUBJECTS,
                 pool_frames: str = DataConfig.pool_frames) -> Dataset:
    """Load ``data`` into memory and split it by patient.

    Args:
        data: ``"phantom"`` or a Decathlon-layout folder.
        image_size, crop, frames, pool_frames, split: as in :class:`DataConfig`.
        seed: seeds the phantom and random splits.
        n_partitions: partitions along the slice axis.
    """
    for option in (frames, pool_frames):
        keeps_frame("", option)  # a bad option fails before anything is read
    check_image_size(image_size)
    load = frames if pool_frames == frames else "both"
    if data == "phantom":
        # rendered at the working size (its field of view is fixed), up to its native 160 pixels
        vols = make_phantom(phantom_subjects, seed=seed, frames=load, size=min(image_size, 160))
        names = dict(PHANTOM_LABELS)
    else:
        if not Path(data).exists():
            raise MedkitError(f"--data {data}: no such folder (use 'phantom' for the built-in data)")
        vols, names = load_folder(data, frames=load)
        if all(v.label is None for v in vols):
            raise MedkitError(f"--data {data}: no labels found (labelsTr/ missing)")
    if crop == "auto":
        is_cine = any(v.frame is not None for v in vols) and data != "phantom"
        crop = 160 if is_cine else None  # smaller images are padded, not cropped
    loaded = make_slices(vols, names, image_size=image_size, crop=crop, n_partitions=n_partitions)
    slices = loaded.select_frames(frames)
    parts = split_for(slices.patients, seed=seed, protocol=split)
    pool = loaded.select_frames(pool_frames) if pool_frames != frames else None
    return Dataset("phantom" if data == "phantom" else Path(data).name, slices, parts, pool)

"""Load a data set by name or path: ``"phantom"`` (built in) or a Decathlon folder."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from medkit.data.phantom import LABELS as PHANTOM_LABELS
from medkit.data.phantom import PHANTOM_SUBJECTS, make_phantom
from medkit.data.slices import SliceSet, check_image_size, make_slices
from medkit.data.splits import Split, split_for
from medkit.data.volumes import FRAMES, load_folder
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


SPLITS = ("auto", "acdc", "random")  # the protocols of split_for


@dataclass(frozen=True)
class DataConfig:
    """What data a run reads and how it is cut into slices and split: passed whole to every
    workflow (with :class:`~medkit.engine.config.TrainConfig` and a method's config).

    Attributes:
        data: ``"phantom"`` (built in) or a Decathlon-layout folder.
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
        seed: seeds the phantom and random splits.
    """

    data: str = "phantom"
    image_size: int = 128
    crop: int | None | str = "auto"
    frames: str = "ed"
    pool_frames: str = "both"
    split: str = "auto"
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("frames", "pool_frames"):  # a bad option fails before anything is read
            if getattr(self, name) not in FRAMES:
                raise MedkitError(f"{name} must be 'ed', 'es' or 'both', got {getattr(self, name)!r}")
        check_image_size(self.image_size)
        if self.split not in SPLITS:
            raise MedkitError(f"split must be one of {', '.join(SPLITS)}, got {self.split!r}")
        if not (self.crop in ("auto", None) or (isinstance(self.crop, int) and self.crop > 0)):
            raise MedkitError(f"crop must be a positive number of pixels, None or 'auto', got {self.crop!r}")

    def params(self) -> dict:
        """What defines the data of a run, for its ``params.json`` (the seed is the run's own)."""
        return {"data": str(self.data), "image_size": self.image_size, "crop": self.crop, "frames": self.frames,
                "pool_frames": self.pool_frames, "split": self.split}


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


def load_dataset(cfg: DataConfig, n_partitions: int = 4, phantom_subjects: int = PHANTOM_SUBJECTS) -> Dataset:
    """Load the data of ``cfg`` into memory and split it by patient.

    Args:
        cfg: what data and how it is cut (:class:`DataConfig`).
        n_partitions: partitions along the slice axis.
        phantom_subjects: subjects of the built-in phantom.

    Example:
        >>> ds = load_dataset(DataConfig("phantom", image_size=64))
        >>> pool = ds.part("pool")  # unlabelled slices of the pool's patients
    """
    data = str(cfg.data)
    load = cfg.frames if cfg.pool_frames == cfg.frames else "both"
    if data == "phantom":
        # rendered at the working size (its field of view is fixed), up to its native 160 pixels
        vols = make_phantom(phantom_subjects, seed=cfg.seed, frames=load, size=min(cfg.image_size, 160))
        names = dict(PHANTOM_LABELS)
    else:
        if not Path(data).exists():
            raise MedkitError(f"data {data}: no such folder (use 'phantom' for the built-in data)")
        vols, names = load_folder(data, frames=load)
        if all(v.label is None for v in vols):
            raise MedkitError(f"data {data}: no labels found (labelsTr/ missing)")
    crop = cfg.crop
    if crop == "auto":
        is_cine = any(v.frame is not None for v in vols) and data != "phantom"
        crop = 160 if is_cine else None  # smaller images are padded, not cropped
    loaded = make_slices(vols, names, image_size=cfg.image_size, crop=crop, n_partitions=n_partitions)
    slices = loaded.select_frames(cfg.frames)
    parts = split_for(slices.patients, seed=cfg.seed, protocol=cfg.split)
    pool = loaded.select_frames(cfg.pool_frames) if cfg.pool_frames != cfg.frames else None
    return Dataset("phantom" if data == "phantom" else Path(data).name, slices, parts, pool)

"""Volumes -> in-memory 2D slices of a fixed size, with the metadata the methods need.

Preprocessing per volume: intensities clipped to the (1, 99) percentiles and scaled to [0, 1];
in-plane, either a centred square crop of ``crop`` native pixels (padded where the image is
smaller) or, without ``crop``, padding to a square; then resizing to ``image_size`` (images
bilinear with antialiasing, labels nearest neighbour). The geometry is kept so that a
prediction can be mapped back to the native grid for evaluation (:meth:`SliceSet.to_native`).

Each slice carries its case, patient, slice index, relative position in the volume (0 at the
first slice, 1 at the last) and partition index (position split into ``n_partitions`` equal
bins, as in Chaitanya et al., NeurIPS 2020).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F

from medkit.data.volumes import Volume, keeps_frame
from medkit.errors import MedkitError


@dataclass(frozen=True)
class Geometry:
    """How a volume's native (H, W) grid maps to the square working grid.

    Native pixel (y, x) sits at (y + oy, x + ox) in the square of side ``side``, which is then
    resized to the working size.
    """

    native_hw: tuple[int, int]
    side: int
    oy: int
    ox: int


@dataclass(frozen=True)
class SliceSet:
    """2D slices of several volumes as tensors.

    Attributes:
        images: float32 (N, 1, h, w) in [0, 1].
        labels: int64 (N, h, w), or None when the set carries no labels (pretraining).
        case_index: int64 (N,) index into ``cases``.
        slice_index: int64 (N,) slice number within its volume.
        position: float32 (N,) relative position in the volume, 0..1.
        partition: int64 (N,) partition index, 0..n_partitions-1.
        cases: case ids; patients: patient id per case; geometry: per case;
        native_labels: per case, uint8 (S, H, W) at native resolution, or None.
        label_names: {value: name}.
    """

    images: torch.Tensor
    labels: torch.Tensor | None
    case_index: torch.Tensor
    slice_index: torch.Tensor
    position: torch.Tensor
    partition: torch.Tensor
    cases: tuple[str, ...]
    patients: tuple[str, ...]
    geometry: tuple[Geometry, ...]
    native_labels: tuple[np.ndarray | None, ...] | None
    label_names: dict[int, str]

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def n_classes(self) -> int:
        return max(self.label_names) + 1

    def select_patients(self, patients: list[str] | tuple[str, ...]) -> SliceSet:
        """The slices of the given patients' cases (raises if a patient is absent)."""
        missing = sorted(set(patients) - set(self.patients))
        if missing:
            raise MedkitError(f"patients not in the data: {', '.join(missing[:5])}"
                              + (" ..." if len(missing) > 5 else ""))
        keep_cases = [i for i, p in enumerate(self.patients) if p in set(patients)]
        return self._subset_cases(keep_cases)

    def _subset_cases(self, keep_cases: list[int]) -> SliceSet:
        remap = torch.full((len(self.cases),), -1, dtype=torch.long)
        remap[keep_cases] = torch.arange(len(keep_cases))
        mask = remap[self.case_index] >= 0  # (N,)
        pick = lambda seq: tuple(seq[i] for i in keep_cases)  # noqa: E731
        return SliceSet(
            images=self.images[mask],
            labels=None if self.labels is None else self.labels[mask],
            case_index=remap[self.case_index[mask]],
            slice_index=self.slice_index[mask], position=self.position[mask],
            partition=self.partition[mask], cases=pick(self.cases), patients=pick(self.patients),
            geometry=pick(self.geometry),
            native_labels=None if self.native_labels is None else pick(self.native_labels),
            label_names=self.label_names)

    def select_frames(self, frames: str) -> SliceSet:
        """The slices of the cases ``frames`` keeps (``"ed"``, ``"es"``, ``"both"``;
        :func:`~medkit.data.volumes.keeps_frame`)."""
        if frames == "both":
            return self
        return self._subset_cases([i for i, c in enumerate(self.cases) if keeps_frame(c, frames)])

    def without_labels(self) -> SliceSet:
        """The same slices with every label removed: what pretraining is given."""
        return replace(self, labels=None, native_labels=None)

    def volume(self, case: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Images (S, 1, h, w) and labels (S, h, w) of one case, in slice order."""
        idx = torch.nonzero(self.case_index == case).flatten()
        idx = idx[torch.argsort(self.slice_index[idx])]
        return self.images[idx], None if self.labels is None else self.labels[idx]

    def to_native(self, logits: torch.Tensor, case: int) -> torch.Tensor:
        """Map working-grid logits (S, C, h, w) of one case to its native grid (S, C, H, W).

        Outside the crop the background class wins.
        """
        g = self.geometry[case]
        s, c = logits.shape[:2]
        sq = F.interpolate(logits.float(), size=(g.side, g.side), mode="bilinear", align_corners=False)
        H, W = g.native_hw
        out = torch.full((s, c, H, W), -1e4, dtype=sq.dtype)
        out[:, 0] = 1e4
        # the part of the native grid covered by the square
        y0, x0 = max(0, -g.oy), max(0, -g.ox)
        y1, x1 = min(H, g.side - g.oy), min(W, g.side - g.ox)
        out[:, :, y0:y1, x0:x1] = sq[:, :, y0 + g.oy:y1 + g.oy, x0 + g.ox:x1 + g.ox]
        return out


def normalise(image: np.ndarray, lo: float = 1.0, hi: float = 99.0) -> np.ndarray:
    """Clip a volume to its (lo, hi) intensity percentiles and scale to [0, 1]."""
    a, b = np.percentile(image, [lo, hi])
    if b <= a:
        return np.zeros_like(image, dtype=np.float32)
    return ((np.clip(image, a, b) - a) / (b - a)).astype(np.float32)


def _to_square(arr: np.ndarray, g: Geometry, fill: float) -> np.ndarray:
    """Place (S, H, W) into the (S, side, side) square of geometry g (crop or pad)."""
    s, H, W = arr.shape
    out = np.full((s, g.side, g.side), fill, dtype=arr.dtype)
    y0, x0 = max(0, -g.oy), max(0, -g.ox)
    y1, x1 = min(H, g.side - g.oy), min(W, g.side - g.ox)
    out[:, y0 + g.oy:y1 + g.oy, x0 + g.ox:x1 + g.ox] = arr[:, y0:y1, x0:x1]
    return out


def check_image_size(image_size: int) -> None:
    """Refuse a working size the networks cannot halve five times."""
    if image_size < 32 or image_size % 32:
        raise MedkitError(f"image_size must be a positive multiple of 32 (the networks halve it 5 times), "
                          f"got {image_size}")


def make_slices(volumes: list[Volume], label_names: dict[int, str], image_size: int = 128,
                crop: int | None = None, n_partitions: int = 4) -> SliceSet:
    """Turn volumes into a :class:`SliceSet`.

    Args:
        volumes: from :func:`~medkit.data.volumes.load_folder` or the phantom.
        label_names: {value: name}, background 0 included.
        image_size: side h = w of the working grid, a multiple of 32 (64-128 on a CPU, 192-256 on a GPU).
        crop: side of a centred square crop in native pixels, or None (pad to square).
        n_partitions: partitions along the slice axis (Chaitanya et al. use 4).

    Example:
        >>> from medkit.data.phantom import make_phantom, LABELS
        >>> s = make_slices(make_phantom(2, frames="ed"), LABELS, image_size=64)
        >>> tuple(s.images.shape[1:])
        (1, 64, 64)
    """
    if not volumes:
        raise MedkitError("the data set is empty: no volume to slice")
    check_image_size(image_size)
    if n_partitions < 1:
        raise MedkitError(f"n_partitions must be at least 1, got {n_partitions}")
    if crop is not None and crop < 16:
        raise MedkitError(f"crop must be at least 16 native pixels, got {crop}")
    imgs, labs, meta = [], [], {k: [] for k in ("case", "slice", "pos")}
    geoms, natives = [], []
    labelled = all(v.label is not None for v in volumes)
    for ci, v in enumerate(volumes):
        s, H, W = v.image.shape
        side = crop if crop is not None else max(H, W)
        g = Geometry((H, W), side, (side - H) // 2, (side - W) // 2)
        img = torch.from_numpy(_to_square(normalise(v.image), g, 0.0))[:, None]  # (S, 1, side, side)
        img = F.interpolate(img, size=(image_size, image_size), mode="bilinear",
                            align_corners=False, antialias=True)
        imgs.append(img.clamp(0, 1))
        if labelled:
            lab = torch.from_numpy(_to_square(v.label, g, 0).astype(np.int64))[:, None].float()
            lab = F.interpolate(lab, size=(image_size, image_size), mode="nearest-exact")
            labs.append(lab[:, 0].long())  # (S, h, w)
        geoms.append(g)
        natives.append(v.label)
        meta["case"].append(torch.full((s,), ci, dtype=torch.long))
        meta["slice"].append(torch.arange(s))
        meta["pos"].append(torch.linspace(0, 1, s) if s > 1 else torch.zeros(1))
    position = torch.cat(meta["pos"]).float()
    return SliceSet(
        images=torch.cat(imgs).float(), labels=torch.cat(labs) if labelled else None,
        case_index=torch.cat(meta["case"]), slice_index=torch.cat(meta["slice"]),
        position=position,
        partition=torch.clamp((position * n_partitions).long(), max=n_partitions - 1),
        cases=tuple(v.case_id for v in volumes), patients=tuple(v.patient_id for v in volumes),
        geometry=tuple(geoms), native_labels=tuple(natives) if labelled else None,
        label_names=dict(label_names))

"""An ImageFolder-layout directory (one sub-folder per class) and its held-out split.

Problems a user can fix are found before any slow step and reported together: a folder with
fewer than two classes, a class without images, files that do not decode.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")


class DatasetError(ValueError):
    """The folder cannot be trained on; the message says what to fix."""


@dataclass(frozen=True)
class Sample:
    path: Path
    label: int


@dataclass(frozen=True)
class ImageFolder:
    root: Path
    classes: list[str]
    samples: list[Sample]

    def labels(self) -> np.ndarray:
        return np.array([s.label for s in self.samples], dtype=np.int64)


def scan(root: Path) -> ImageFolder:
    """Classes are the sorted sub-folder names; images are files with an image suffix."""
    if not root.is_dir():
        raise DatasetError(f"{root} is not a directory")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(classes) < 2:
        found = f"only {classes[0]!r}" if classes else "none"
        raise DatasetError(
            f"{root} needs one sub-folder per class and at least two classes; found {found}"
        )
    samples, empty = [], []
    for label, name in enumerate(classes):
        files = sorted(
            p
            for p in (root / name).rglob("*")
            if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
        )
        if not files:
            empty.append(name)
        samples.extend(Sample(p, label) for p in files)
    if empty:
        raise DatasetError(
            f"{root}: class folder(s) without images ({', '.join(IMAGE_SUFFIXES)}): "
            + ", ".join(empty)
        )
    return ImageFolder(root, classes, samples)


def split(
    labels: np.ndarray, val_fraction: float, seed: int, names: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Stratified train/val indices: each class gives ``val_fraction`` of its images (at least
    one) to validation and keeps at least one for training."""
    if not 0 < val_fraction < 1:
        raise DatasetError(f"--val-fraction must be between 0 and 1, got {val_fraction}")
    rng = np.random.default_rng(seed)
    train, val = [], []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        if len(members) < 2:
            raise DatasetError(
                f"class {names[int(label)]!r} has one image; a held-out split needs two"
            )
        n_val = min(len(members) - 1, max(1, round(val_fraction * len(members))))
        val.extend(members[:n_val])
        train.extend(members[n_val:])
    return np.sort(np.array(train)), np.sort(np.array(val))

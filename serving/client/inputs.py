"""Images in any form a caller has them: a path, bytes, or a PIL image."""

from __future__ import annotations

import io
import mimetypes
import os
from pathlib import Path
from typing import Any

# A path (str or os.PathLike), encoded bytes, or a PIL image (not imported: PIL is optional).
ImageInput = Any


def as_upload(image: ImageInput, index: int) -> tuple[str, bytes, str]:
    """``(filename, bytes, content type)`` for one multipart file."""
    if isinstance(image, bytes | bytearray | memoryview):
        return f"image-{index}", bytes(image), "application/octet-stream"
    if isinstance(image, str | os.PathLike):
        path = Path(image)
        kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return path.name, path.read_bytes(), kind
    if hasattr(image, "save") and hasattr(image, "mode"):  # PIL.Image, without importing PIL
        buf = io.BytesIO()
        image.save(buf, format="PNG")
        return f"image-{index}.png", buf.getvalue(), "image/png"
    raise TypeError(
        f"image {index}: expected a path, bytes or a PIL image, got {type(image).__name__}"
    )

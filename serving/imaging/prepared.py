"""Preparing a request's images on the decode pool, optionally keeping the decoded pixels."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from serving.imaging.decode import DecodedImage, decode_image
from serving.imaging.preprocess import ImagePreprocessor, PreparedImage

T = TypeVar("T")


async def prepare_all(
    pool: Executor, prepare: Callable[[bytes], T], images: Sequence[bytes]
) -> list[T]:
    """Decode and preprocess images on the decode pool, in parallel, keeping order."""
    loop = asyncio.get_running_loop()
    return list(await asyncio.gather(*(loop.run_in_executor(pool, prepare, i) for i in images)))


@dataclass(frozen=True)
class Prepared:
    decoded: DecodedImage
    prepared: PreparedImage

    @property
    def tensor(self) -> np.ndarray:
        """The model input row, as :attr:`PreparedImage.tensor`."""
        return self.prepared.tensor


def prepare_keeping_pixels(
    preprocessor: ImagePreprocessor, data: bytes, *, full_resolution: bool = False
) -> Prepared:
    """Decode (reduced to what the model needs, unless a full-resolution drawing is wanted)
    and preprocess, keeping the decoded pixels."""
    if full_resolution:
        decoded = decode_image(data, max_pixels=preprocessor.max_pixels)
    else:
        decoded = preprocessor.decode(data)
    return Prepared(decoded, preprocessor.from_decoded(decoded))

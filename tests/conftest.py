"""Shared fixtures: the real model store, sample photos, and a live server over it."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from PIL import Image

from tests.server import LiveServer

ROOT = Path(__file__).resolve().parent.parent
MODEL_STORE = ROOT / "model_store"


def jpeg_bytes(pixels: np.ndarray, quality: int = 95, **save: object) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=quality, **save)
    return buf.getvalue()


def gate_decoder(
    monkeypatch: pytest.MonkeyPatch, module: ModuleType
) -> tuple[threading.Event, list[int]]:
    """``module.decode_image`` blocks until the returned gate opens; the list records the size
    of each image whose decode began (as the batcher tests gate the runner)."""
    gate = threading.Event()
    started: list[int] = []
    real = module.decode_image

    def gated(data: bytes, **kw):  # type: ignore[no-untyped-def]
        started.append(len(data))
        assert gate.wait(30), "gate never opened"
        return real(data, **kw)

    monkeypatch.setattr(module, "decode_image", gated)
    return gate, started


def wait_for_decodes(started: list[int], count: int, timeout_s: float = 10.0) -> None:
    """Wait until ``count`` gated decodes have begun (the list :func:`gate_decoder` returns)."""
    deadline = time.monotonic() + timeout_s
    while len(started) < count and time.monotonic() < deadline:
        time.sleep(0.05)


@pytest.fixture(scope="session")
def photos() -> dict[str, bytes]:
    """scikit-image's sample photos as JPEG uploads, as an app would send them."""
    import skimage.data

    return {
        name: jpeg_bytes(getattr(skimage.data, name)())
        for name in ("chelsea", "coffee", "astronaut")
    }


@pytest.fixture(scope="session")
def server() -> Iterator[LiveServer]:
    """The shipped model store served for real; shared by tests that only read from it."""
    with LiveServer(MODEL_STORE, load_models=["mobilenet_v2"]) as srv:
        yield srv

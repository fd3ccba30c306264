"""The embed task core on the shipped MobileNetV2: unit vectors equal to the ONNX features."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import onnxruntime as ort

from serving.core.config import load_config
from serving.core.deadline import Deadline
from serving.core.metrics import Metrics
from serving.core.repository import ModelRepository
from serving.imaging.preprocess import ImagePreprocessor
from serving.settings import Settings
from serving.tasks import PIPELINES
from serving.tasks.embed import l2_normalise
from tests.conftest import MODEL_STORE


def test_l2_normalise_rows_and_zero_row() -> None:
    out = l2_normalise(np.array([[3.0, 4.0], [0.0, 0.0]]))
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0]])
    assert out.dtype == np.float32


def test_embeddings_are_normalised_onnx_features(photos: dict[str, bytes]) -> None:
    settings = Settings(model_store=MODEL_STORE)
    images = [photos["chelsea"], photos["coffee"], photos["chelsea"]]

    async def run() -> np.ndarray:
        with ThreadPoolExecutor(2) as pool:
            repo = ModelRepository(MODEL_STORE, settings, Metrics(), pool, PIPELINES)
            await repo.load_all(["mobilenet_v2"])
            try:
                embedder = repo.get("mobilenet_v2").pipeline.embedder
                assert embedder.dimension == 1280
                return await embedder(images, deadline=Deadline.after_ms(30_000))
            finally:
                await repo.close()

    vectors = asyncio.run(run())
    assert vectors.shape == (3, 1280)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(vectors[0], vectors[2], atol=1e-6)
    assert float(vectors[0] @ vectors[1]) < 0.9  # a cat and a coffee cup are not alike

    session = ort.InferenceSession(
        str(MODEL_STORE / "mobilenet_v2" / "1" / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    pre = load_config(MODEL_STORE / "mobilenet_v2" / "config.yaml").preprocess
    assert pre is not None
    pixels = ImagePreprocessor(pre, max_pixels=settings.max_image_pixels)(photos["coffee"]).tensor
    (features,) = session.run(["features"], {"pixels": pixels[None]})
    np.testing.assert_allclose(vectors[1], l2_normalise(features)[0], atol=1e-5)

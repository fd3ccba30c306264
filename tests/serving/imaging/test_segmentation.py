"""Segmenter postprocessing against pycocotools' RLE and a round trip through a letterbox."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from serving.core.config import Preprocess
from serving.imaging.decode import DecodedImage
from serving.imaging.preprocess import ImagePreprocessor
from serving.imaging.segmentation import (
    area_fractions,
    class_map,
    png_bytes,
    rle_decode,
    rle_encode,
    to_original,
)

SHAPES = [(1, 1), (3, 5), (64, 48), (301, 451)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("density", [0.0, 0.02, 0.5, 1.0])
def test_rle_matches_pycocotools(shape: tuple[int, int], density: float) -> None:
    mask_utils = pytest.importorskip("pycocotools.mask")
    rng = np.random.default_rng(shape[0] * 7 + int(density * 100))
    mask = rng.random(shape) < density
    reference = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    ours = rle_encode(mask)
    assert ours["size"] == list(shape)
    assert ours["counts"] == reference["counts"].decode("ascii")
    decoded = mask_utils.decode({"size": ours["size"], "counts": ours["counts"].encode()})
    np.testing.assert_array_equal(decoded.astype(bool), mask)
    np.testing.assert_array_equal(rle_decode(ours), mask)


def test_blobs_rle_round_trip() -> None:
    mask = np.zeros((120, 90), dtype=bool)
    mask[10:50, 20:70] = True
    mask[80:, :5] = True
    np.testing.assert_array_equal(rle_decode(rle_encode(mask)), mask)


def test_class_map_back_through_a_letterbox() -> None:
    """Letterbox a known class map forward with nearest neighbour, then undo it: the original
    comes back except within a pixel of class boundaries."""
    prep = ImagePreprocessor(
        Preprocess.model_validate(
            {
                "input": "x",
                "resize": {"mode": "letterbox", "width": 96, "height": 96, "center": True},
            }
        ),
        max_pixels=10**7,
    )
    truth = np.zeros((150, 300), dtype=np.uint8)
    truth[20:100, 30:120] = 1
    truth[60:140, 200:290] = 2
    geometry = prep.from_decoded(
        DecodedImage(np.zeros((150, 300, 3), np.uint8), (300, 150))
    ).geometry
    assert geometry.offset[0] == 0 and geometry.offset[1] > 0  # padded above and below
    small = np.asarray(Image.fromarray(truth).resize((96, 48), Image.Resampling.NEAREST))
    model_map = np.full((96, 96), 7, dtype=np.uint8)  # padding gets a class that must vanish
    top = round(geometry.offset[1])
    model_map[top : top + 48] = small
    logits = np.eye(8, dtype=np.float32)[model_map].transpose(2, 0, 1)
    back = to_original(class_map(logits), geometry)
    assert back.shape == truth.shape and 7 not in back
    assert (back != truth).mean() < 0.03


def test_area_fractions_and_png() -> None:
    classes = np.array([[0, 0, 1, 1], [2, 2, 2, 0]], dtype=np.uint8)
    np.testing.assert_allclose(area_fractions(classes, 4), [3 / 8, 2 / 8, 3 / 8, 0])
    palette = np.array([[0, 0, 0], [255, 0, 0], [0, 255, 0]], dtype=np.uint8)
    img = Image.open(io.BytesIO(png_bytes(classes, palette)))
    assert img.mode == "P" and img.getpalette()[3:6] == [255, 0, 0]
    np.testing.assert_array_equal(np.asarray(img), classes)
    plain = Image.open(io.BytesIO(png_bytes(classes)))
    np.testing.assert_array_equal(np.asarray(plain), classes)

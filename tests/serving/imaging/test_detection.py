"""Detector postprocessing against torchvision's NMS and hand-checkable geometry."""

from __future__ import annotations

import numpy as np
import pytest

from serving.core.config import Preprocess
from serving.imaging.decode import DecodedImage
from serving.imaging.detection import DetectionParams, candidates, detect, to_xyxy
from serving.imaging.nms import nms
from serving.imaging.preprocess import ImagePreprocessor


def random_boxes(rng: np.random.Generator, n: int, extent: float = 200) -> np.ndarray:
    xy = rng.uniform(0, extent, size=(n, 2))
    wh = rng.uniform(5, 60, size=(n, 2))
    return np.concatenate([xy, xy + wh], axis=1).astype(np.float32)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("iou", [0.3, 0.5, 0.7])
def test_class_aware_nms_matches_torchvision(seed: int, iou: float) -> None:
    torch = pytest.importorskip("torch")
    ops = pytest.importorskip("torchvision.ops")
    rng = np.random.default_rng(seed)
    boxes = random_boxes(rng, 300)
    scores = rng.permutation(300).astype(np.float32) / 300  # distinct: no tie-breaking questions
    classes = rng.integers(0, 4, size=300)
    ours = nms(boxes, scores, iou, groups=classes)
    reference = ops.batched_nms(
        torch.from_numpy(boxes), torch.from_numpy(scores), torch.from_numpy(classes), iou
    ).numpy()
    np.testing.assert_array_equal(ours, reference)


def params(**overrides: object) -> DetectionParams:
    base = {
        "score_threshold": 0.5,
        "iou_threshold": 0.5,
        "max_detections": 100,
        "pre_nms_top_k": 1000,
    }
    return DetectionParams(**{**base, **overrides})


def test_candidates_threshold_top_k_and_class_filter() -> None:
    scores = np.array([[0.9, 0.1, 0.6], [0.2, 0.55, 0.0], [0.4, 0.7, 0.8]], dtype=np.float32)
    loc, cls = candidates(scores, params())
    assert sorted(zip(loc.tolist(), cls.tolist(), strict=True)) == [
        (0, 0),
        (0, 2),
        (1, 1),
        (2, 1),
        (2, 2),
    ]
    loc, cls = candidates(scores, params(pre_nms_top_k=2))
    assert sorted(zip(loc.tolist(), cls.tolist(), strict=True)) == [(0, 0), (2, 2)]
    loc, cls = candidates(scores, params(classes=frozenset({1})))
    assert sorted(zip(loc.tolist(), cls.tolist(), strict=True)) == [(1, 1), (2, 1)]


def test_cxcywh_boxes() -> None:
    np.testing.assert_allclose(
        to_xyxy(np.array([[10.0, 20.0, 4.0, 6.0]]), "cxcywh"), [[8.0, 17.0, 12.0, 23.0]]
    )


def test_detect_undoes_the_letterbox_and_keeps_one_box_per_object_and_class() -> None:
    """A 400x200 image letterboxed to 128x128 (scale 0.32, padded below): boxes found in model
    pixels come back in original pixels; overlapping duplicates of a class collapse to one."""
    prep = ImagePreprocessor(
        Preprocess.model_validate(
            {"input": "x", "resize": {"mode": "letterbox", "width": 128, "height": 128}}
        ),
        max_pixels=10**7,
    )
    pixels = np.zeros((200, 400, 3), dtype=np.uint8)
    geometry = prep.from_decoded(DecodedImage(pixels, (400, 200))).geometry
    assert geometry.scale == (0.32, 0.32) and geometry.offset == (0.0, 0.0)
    original = np.array([[100, 50, 200, 150], [102, 52, 198, 149], [300, 20, 380, 60]], float)
    model_boxes = (original * 0.32).astype(np.float32)
    scores = np.array([[0.9, 0.0], [0.8, 0.0], [0.0, 0.7]], dtype=np.float32)
    found = detect(model_boxes, scores, geometry, params())
    np.testing.assert_allclose(found.boxes, original[[0, 2]], atol=1e-3)
    np.testing.assert_array_equal(found.class_ids, [0, 1])
    np.testing.assert_allclose(found.scores, [0.9, 0.7])
    assert len(detect(model_boxes, scores, geometry, params(max_detections=1)).boxes) == 1


def test_detect_clips_to_the_image_and_handles_nothing_found() -> None:
    prep = ImagePreprocessor(
        Preprocess.model_validate(
            {"input": "x", "resize": {"mode": "letterbox", "width": 64, "height": 64}}
        ),
        max_pixels=10**7,
    )
    geometry = prep.from_decoded(DecodedImage(np.zeros((64, 32, 3), np.uint8), (32, 64))).geometry
    boxes = np.array([[-5.0, -5.0, 60.0, 70.0]], dtype=np.float32)
    found = detect(boxes, np.array([[0.9]], np.float32), geometry, params())
    np.testing.assert_allclose(found.boxes, [[0, 0, 32, 64]])
    empty = detect(boxes, np.array([[0.1]], np.float32), geometry, params())
    assert empty.boxes.shape == (0, 4) and empty.class_ids.shape == (0,)

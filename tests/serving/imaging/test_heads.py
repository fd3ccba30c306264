"""Detection formats (serving.imaging.heads) against reference decodings, and the bilinear
class maps of low-resolution segmentation scores against PyTorch's interpolation."""

from __future__ import annotations

import numpy as np
import pytest

from serving.core.config import BoxDetection
from serving.imaging.detection import DetectionParams
from serving.imaging.heads import Frame, LayoutError, check_layout, decode
from serving.imaging.segmentation import class_map_of
from serving.imaging.transforms import Geometry

PARAMS = DetectionParams(0.3, 0.5, 100, 1000)
# A 640 x 480 photo letterboxed into 320 x 320: scale 0.5, 40 px of padding at the top.
FRAME = Frame(Geometry((640, 480)).then_scale(0.5, 0.5).then_shift(0, 40), (320, 320))


def post(fmt: str, **outputs: str) -> BoxDetection:
    return BoxDetection(kind="detection", format=fmt, labels="l.txt", **outputs)


def yolo_v8(rng: np.random.Generator, anchors: int = 200, classes: int = 3) -> np.ndarray:
    centre = rng.uniform(40, 280, (anchors, 2))
    size = rng.uniform(10, 80, (anchors, 2))
    scores = rng.uniform(0, 1, (anchors, classes)) ** 3
    return np.concatenate([centre, size, scores], axis=1).T.astype(np.float32)  # [4+C, A]


def test_yolov8_and_yolov5_layouts_decode_alike_and_match_torchvision_nms() -> None:
    torch = pytest.importorskip("torch")
    ops = pytest.importorskip("torchvision.ops")
    v8 = yolo_v8(np.random.default_rng(0))
    one_class = DetectionParams(0.3, 0.5, 1000, 1000, multi_label=False)
    got = decode({"o": v8}, post("yolov8", output="o"), FRAME, one_class)
    v5 = np.concatenate([v8[:4].T, np.ones((v8.shape[1], 1)), v8[4:].T], axis=1)  # objectness 1
    same = decode({"o": v5.astype(np.float32)}, post("yolov5", output="o"), FRAME, one_class)
    np.testing.assert_array_equal(got.boxes, same.boxes)
    # reference: best class per anchor, threshold, class-aware NMS, then undo the letterbox
    pred = torch.from_numpy(v8.T)
    conf, cls = pred[:, 4:].max(1)
    keep = conf >= 0.3
    xy, wh = pred[keep, :2], pred[keep, 2:4]
    boxes = torch.cat([xy - wh / 2, xy + wh / 2], 1)
    kept = ops.batched_nms(boxes, conf[keep], cls[keep], 0.5)
    ref = (boxes[kept] - torch.tensor([0, 40, 0, 40])) / 0.5
    ref = torch.minimum(ref.clamp(min=0), torch.tensor([640, 480, 640, 480]))
    np.testing.assert_allclose(got.boxes, ref.numpy(), atol=1e-3)
    np.testing.assert_array_equal(got.class_ids, cls[keep][kept].numpy())
    assert len(got.scores) >= 5


def test_yolov5_multiplies_objectness_into_class_scores() -> None:
    row = np.array([[100, 100, 20, 20, 0.5, 0.8, 0.1]], dtype=np.float32)  # [A=1, 5+2]
    found = decode({"o": row[None]}, post("yolov5", output="o"), FRAME, PARAMS)  # batch of 1 kept
    np.testing.assert_allclose(found.scores, [0.4])
    np.testing.assert_allclose(found.boxes, [[180, 100, 220, 140]])


def test_detr_softmax_without_no_object_and_normalised_boxes() -> None:
    logits = np.array([[4.0, 0.0, 0.0], [0.0, 0.0, 5.0]], dtype=np.float32)  # C=2 + no-object
    boxes = np.array([[0.5, 0.5, 0.5, 0.25], [0.1, 0.1, 0.1, 0.1]], dtype=np.float32)
    found = decode(
        {"l": logits, "b": boxes}, post("detr", logits_output="l", boxes_output="b"), FRAME, PARAMS
    )
    p = np.exp(4) / (np.exp(4) + 2)
    np.testing.assert_allclose(found.scores, [p], rtol=1e-6)  # the no-object query is dropped
    # 0.5 * 320 = 160 centre, 160 x 80 in model pixels -> original: (x - 0, y - 40) / 0.5
    np.testing.assert_allclose(found.boxes, [[160, 160, 480, 320]])
    assert found.class_ids.tolist() == [0]


def test_prebuilt_outputs_are_thresholded_filtered_and_mapped_back() -> None:
    out = {
        "boxes": np.array([[0, 40, 100, 140], [10, 50, 20, 60], [0, 40, 320, 280]], np.float32),
        "scores": np.array([0.9, 0.2, 0.6], np.float32),
        "labels": np.array([3, 1, 7], np.int64),
    }
    cfg = post("torchvision", boxes_output="boxes", scores_output="scores", labels_output="labels")
    found = decode(out, cfg, FRAME, PARAMS)
    assert found.class_ids.tolist() == [3, 7]
    np.testing.assert_allclose(found.boxes, [[0, 0, 200, 200], [0, 0, 640, 480]])
    only = DetectionParams(0.3, 0.5, 100, 1000, classes=frozenset({7}))
    assert decode(out, cfg, FRAME, only).class_ids.tolist() == [7]


@pytest.mark.parametrize(
    ("cfg", "shapes", "message"),
    [
        (post("yolov8", output="o"), {"o": [2100, 84]}, "expected [84, *]"),
        (post("yolov5", output="o"), {"o": [84, 2100]}, "expected [*, 85]"),
        (
            post("detr", logits_output="l", boxes_output="b"),
            {"l": [100, 80], "b": [100, 4]},
            "expected [*, 81]",
        ),
        (
            post("torchvision", boxes_output="b", scores_output="s", labels_output="l"),
            {"b": [-1, 5], "s": [-1], "l": [-1]},
            "expected [*, 4]",
        ),
    ],
)
def test_layout_checks_say_what_was_found_and_expected(
    cfg: BoxDetection, shapes: dict[str, list[int]], message: str
) -> None:
    with pytest.raises(LayoutError, match=message.replace("[", r"\[").replace("*", r"\*")):
        check_layout(cfg, shapes, 80)
    check_layout(cfg, {k: [-1] * len(v) for k, v in shapes.items()}, 80)  # dynamic: can't tell


def test_format_outputs_are_validated_in_the_config() -> None:
    with pytest.raises(ValueError, match="format 'detr' needs logits_output"):
        post("detr", boxes_output="b")
    with pytest.raises(ValueError, match="remove scores_output"):
        post("yolov8", output="o", scores_output="s")


def test_low_resolution_scores_upsample_like_pytorch_bilinear() -> None:
    torch = pytest.importorskip("torch")
    scores = np.random.default_rng(1).normal(size=(6, 32, 48)).astype(np.float32)
    geometry = Geometry((601, 397)).then_scale(192 / 601, 128 / 397)  # stretched to 192 x 128
    ours = class_map_of(scores, geometry, (192, 128))  # scores at a quarter of the input
    ref = torch.nn.functional.interpolate(
        torch.from_numpy(scores)[None], size=(397, 601), mode="bilinear", align_corners=False
    )[0].argmax(0)
    np.testing.assert_array_equal(ours, ref.numpy())

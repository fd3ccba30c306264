"""Exported models served through ``fovea models add`` give what their own frameworks give.

Each reference runs the framework's own post-processing (Ultralytics' NMS and box scaling,
torchvision's in-model decoding and NMS, DETR's PostProcess, PyTorch's upsampling) on the same
input tensor the server builds, so what is compared is the served output path. Tolerances, in
original-image pixels: boxes within 1 px (Ultralytics scales both axes by one gain where the
server keeps each axis's exact ratio: up to 0.6 px on this photo), 0.05 px for everything else
(ONNX Runtime vs PyTorch arithmetic); class maps agree on >= 99.5 % of pixels (argmax ties at
class borders).
"""

from __future__ import annotations

import base64
import io
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image

from serving.core.config import load_config
from serving.imaging.preprocess import ImagePreprocessor
from tests.server import LiveServer
from tests.serving.byom.conftest import HOT_LOADED, Exported, add, torch

F = torch.nn.functional


def prepared(store: Path, name: str, png: bytes) -> np.ndarray:
    """The input tensor the server builds for ``name`` (batch axis added)."""
    config = load_config(store / name / "config.yaml")
    assert config.preprocess is not None
    return ImagePreprocessor(config.preprocess, max_pixels=10**8)(png).tensor[None]


def detect(srv: LiveServer, name: str, png: bytes, **options: object) -> list[dict]:
    r = httpx.post(
        srv.url + "/v1/detect",
        files=[("image", ("photo.png", png, "image/png"))],
        params={"model": name, **options},
        timeout=120,
    )
    assert r.status_code == 200, r.text
    return r.json()["results"][0]["detections"]


def segment(srv: LiveServer, name: str, png: bytes) -> np.ndarray:
    r = httpx.post(
        srv.url + "/v1/segment",
        files=[("image", ("photo.png", png, "image/png"))],
        params={"model": name, "mask_format": "png"},
        timeout=120,
    )
    assert r.status_code == 200, r.text
    data = base64.b64decode(r.json()["results"][0]["mask_png"])
    return np.asarray(Image.open(io.BytesIO(data)))


def assert_same(
    served: list[dict], boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray, box_tol: float
) -> None:
    """Same detections, matched by label and nearest box; boxes within ``box_tol`` pixels."""
    assert len(served) == len(scores), (len(served), len(scores))
    got = np.array([d["box"] for d in served], dtype=np.float64).reshape(-1, 4)
    got_labels = np.array([d["class_id"] for d in served])
    got_scores = np.array([d["score"] for d in served])
    worst = 0.0
    for box, score, label in zip(boxes, scores, labels, strict=True):
        same = np.flatnonzero(got_labels == label)
        assert same.size, f"no served box of class {label}"
        dist = np.abs(got[same] - box).max(axis=1)
        j = same[dist.argmin()]
        worst = max(worst, float(dist.min()))
        assert abs(got_scores[j] - score) < 1e-3
    assert worst <= box_tol, f"largest box difference {worst:.3f} px"


def test_yolov8_matches_ultralytics_nms(
    server: LiveServer,
    store: Path,
    exported: dict[str, Exported],
    photo: np.ndarray,
    photo_png: bytes,
) -> None:
    from ultralytics.utils.nms import non_max_suppression
    from ultralytics.utils.ops import scale_boxes

    config = load_config(store / "yolov8n" / "config.yaml")
    assert config.postprocess.format == "yolov8"  # type: ignore[union-attr]
    assert (store / "yolov8n" / "labels.txt").read_text().split() == ["circle", "square", "star"]
    x = prepared(store, "yolov8n", photo_png)
    raw = ort.InferenceSession(str(exported["yolov8n"].path)).run(None, {"images": x})[0]
    ref = non_max_suppression(torch.from_numpy(raw), conf_thres=0.15, iou_thres=0.7, max_det=300)[0]
    boxes = scale_boxes(x.shape[2:], ref[:, :4].clone(), photo.shape[:2]).numpy()
    assert len(ref) >= 10, "too few boxes for a meaningful comparison"
    served = detect(server, "yolov8n", photo_png, score_threshold=0.15)
    assert_same(served, boxes, ref[:, 4].numpy(), ref[:, 5].numpy().astype(int), box_tol=1.0)


@pytest.mark.parametrize("name", ["ssdlite", "faster_rcnn"])
def test_torchvision_detectors_match_their_own_postprocessing(
    server: LiveServer,
    store: Path,
    exported: dict[str, Exported],
    photo: np.ndarray,
    photo_png: bytes,
    name: str,
) -> None:
    config = load_config(store / name / "config.yaml")
    assert config.postprocess.format == "torchvision"  # type: ignore[union-attr]
    assert config.batching.max_batch_size == 0
    image = torch.from_numpy(prepared(store, name, photo_png)[0])
    with torch.no_grad():
        ref = exported[name].model([image])[0]
    assert len(ref["scores"]) >= 10 and len(set(ref["scores"].tolist())) >= 10
    (height, width), (h, w) = photo.shape[:2], image.shape[1:]
    boxes = ref["boxes"].numpy() * np.array([width / w, height / h] * 2)  # served at --size
    served = detect(server, name, photo_png, score_threshold=0, max_detections=1000)
    assert_same(served, boxes, ref["scores"].numpy(), ref["labels"].numpy(), 0.05)


def test_detr_matches_detr_postprocess(
    server: LiveServer,
    store: Path,
    exported: dict[str, Exported],
    photo: np.ndarray,
    photo_png: bytes,
) -> None:
    x = torch.from_numpy(prepared(store, "detr", photo_png))
    with torch.no_grad():
        logits, boxes = exported["detr"].model(x)
    # DETR's PostProcess: softmax without the no-object class, boxes to the image's pixels.
    scores, labels = logits.softmax(-1)[0, :, :-1].max(-1)
    cx, cy, w, h = boxes[0].unbind(-1)
    height, width = photo.shape[:2]
    xyxy = torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1)
    xyxy = (xyxy * torch.tensor([width, height, width, height])).clamp(min=0)
    xyxy = torch.minimum(xyxy, torch.tensor([width, height, width, height]))
    keep = scores >= 0.3
    assert keep.sum() >= 5, "too few queries above the threshold"
    served = detect(server, "detr", photo_png, score_threshold=0.3)
    assert_same(served, xyxy[keep].numpy(), scores[keep].numpy(), labels[keep].numpy(), 0.05)


@pytest.mark.parametrize("name", ["lraspp", "deeplab"])
def test_torchvision_segmenters_match_their_output(
    server: LiveServer,
    store: Path,
    exported: dict[str, Exported],
    photo: np.ndarray,
    photo_png: bytes,
    name: str,
) -> None:
    x = torch.from_numpy(prepared(store, name, photo_png))
    with torch.no_grad():
        classes = exported[name].model(x)["out"].argmax(1, keepdim=True).float()
    ref = F.interpolate(classes, size=photo.shape[:2], mode="nearest-exact")[0, 0].numpy()
    counts = np.bincount(ref.astype(int).ravel(), minlength=5) / ref.size
    assert (counts >= 0.02).sum() >= 2, f"degenerate reference map {counts}"
    served = segment(server, name, photo_png)
    assert served.shape == ref.shape
    assert (served == ref).mean() >= 0.995


def test_hot_loaded_segformer_style_logits_upsampled_like_hugging_face(
    server: LiveServer,
    store: Path,
    exported: dict[str, Exported],
    photo: np.ndarray,
    photo_png: bytes,
) -> None:
    add(store, HOT_LOADED, exported[HOT_LOADED], "--url", server.url)
    x = torch.from_numpy(prepared(store, HOT_LOADED, photo_png))
    with torch.no_grad():
        logits = exported[HOT_LOADED].model(x)
    assert logits.shape[-1] == x.shape[-1] // 4
    # Hugging Face's post_process_semantic_segmentation: bilinear to the image size, argmax.
    up = F.interpolate(logits, size=photo.shape[:2], mode="bilinear", align_corners=False)
    ref = up.argmax(1)[0].numpy()
    counts = np.bincount(ref.ravel(), minlength=4) / ref.size
    assert (counts >= 0.02).sum() >= 2, f"degenerate reference map {counts}"
    assert (segment(server, HOT_LOADED, photo_png) == ref).mean() >= 0.995


def test_non_batchable_model_under_concurrency(server: LiveServer, photo_png: bytes) -> None:
    config = httpx.get(server.url + "/v2/models/ssdlite/config", timeout=10).json()
    assert config["max_batch_size"] == 0 and config["input"][0]["dims"] == [3, -1, -1]
    alone = detect(server, "ssdlite", photo_png, score_threshold=0.5)
    with ThreadPoolExecutor(12) as pool:
        results = list(
            pool.map(lambda _: detect(server, "ssdlite", photo_png, score_threshold=0.5), range(12))
        )
    assert all(r == alone for r in results) and alone
    metrics = httpx.get(server.url + "/metrics", timeout=10).text
    series = [
        line
        for line in metrics.splitlines()
        if line.startswith("fovea_batch_size") and 'model="ssdlite"' in line
    ]
    count = next(float(s.split()[-1]) for s in series if s.startswith("fovea_batch_size_count"))
    ones = next(float(s.split()[-1]) for s in series if 'le="1.0"' in s)
    assert count >= 13 and ones == count  # every run held exactly one request


def test_hand_written_config_with_unfit_layout_fails_alone(server: LiveServer) -> None:
    models = {
        m["name"]: m for m in httpx.get(server.url + "/v1/models", timeout=10).json()["models"]
    }
    broken = models["yolo_as_v5"]
    assert broken["state"] == "failed"
    assert "expected" in broken["reason"] and "YOLOv5" in broken["reason"]
    assert models["yolov8n"]["state"] == "ready" and models["ssdlite"]["state"] == "ready"

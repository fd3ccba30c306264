"""Real architectures exported by their own libraries, added with ``fovea models add`` into one
store and served by one live server for the module's tests."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from serving.model_add import main as models_add
from tests.server import LiveServer

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")
_pillow_open = Image.open
pytest.importorskip("ultralytics")
# Importing Ultralytics replaces PIL's Image.open process-wide (a HEIF fallback needing pi_heif);
# the servers every other test starts in this process must decode with Pillow's own.
Image.open = _pillow_open

from tests.serving.byom import exporters  # noqa: E402  (needs torch)

LABELS = {4: ["a", "b", "c", "d"], 5: ["background", "a", "b", "c", "d"]}


@dataclass
class Exported:
    path: Path
    model: torch.nn.Module
    labels: int | None  # classes to name with --labels; None: the file's metadata names them
    size: tuple[str, str] | None = None  # --size WIDTH HEIGHT


@pytest.fixture(scope="session")
def photo() -> np.ndarray:
    """scikit-image's coffee photo (600 x 400): not square, so letterboxes pad."""
    import skimage.data

    return skimage.data.coffee()


@pytest.fixture(scope="session")
def photo_png(photo: np.ndarray) -> bytes:
    """Lossless, so the server decodes exactly the pixels the references see."""
    buf = io.BytesIO()
    Image.fromarray(photo).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="session")
def exported(photo: np.ndarray) -> dict[str, Exported]:
    image = torch.from_numpy(photo).permute(2, 0, 1).float() / 255
    batch = image[None]
    ssd, frcnn = exporters.ssdlite(image), exporters.faster_rcnn(image)
    lraspp = exporters.segmenter("lraspp_mobilenet_v3_large", batch)
    deeplab = exporters.segmenter("deeplabv3_mobilenet_v3_large", batch)
    detr, segformer = exporters.tiny_detr(batch), exporters.tiny_segformer(batch)
    yolo, yolo_path = exporters.yolov8n(batch)
    return {
        "ssdlite": Exported(exporters.export_detector(ssd, "ssdlite", 240, 320), ssd, 5),
        "faster_rcnn": Exported(
            exporters.export_detector(frcnn, "faster_rcnn", 320, 480), frcnn, 4, ("480", "320")
        ),
        "lraspp": Exported(exporters.export_segmenter(lraspp, "lraspp", 256), lraspp, 5),
        "deeplab": Exported(exporters.export_segmenter(deeplab, "deeplab", 256), deeplab, 5),
        "detr": Exported(exporters.export_detr(detr), detr, 4),
        "segformer": Exported(exporters.export_segformer(segformer), segformer, 4),
        "yolov8n": Exported(yolo_path, yolo, None),
    }


def add(store: Path, name: str, model: Exported, *extra: str) -> None:
    """``fovea models add`` in-process (the CLI calls this same function)."""
    argv = [str(model.path), "--store", str(store), "--name", name, *extra]
    if model.size:
        argv += ["--size", *model.size]
    if model.labels is not None:
        labels = store.parent / f"labels{model.labels}.txt"
        labels.write_text("\n".join(LABELS[model.labels]) + "\n")
        argv += ["--labels", str(labels)]
    assert models_add(argv) == 0


HOT_LOADED = "segformer"  # added with --url once the server runs


@pytest.fixture(scope="session")
def store(tmp_path_factory: pytest.TempPathFactory, exported: dict[str, Exported]) -> Path:
    store = tmp_path_factory.mktemp("byom") / "model_store"
    for name, model in exported.items():
        if name != HOT_LOADED:
            add(store, name, model)
    # A hand-written config whose layout matches no format: YOLOv8's output read as YOLOv5.
    broken = store / "yolo_as_v5"
    (broken / "1").mkdir(parents=True)
    (broken / "1" / "model.onnx").write_bytes((store / "yolov8n" / "1" / "model.onnx").read_bytes())
    (broken / "labels.txt").write_text((store / "yolov8n" / "labels.txt").read_text())
    config = yaml.safe_load((store / "yolov8n" / "config.yaml").read_text())
    config["name"] = "yolo_as_v5"
    config["postprocess"]["format"] = "yolov5"
    (broken / "config.yaml").write_text(yaml.safe_dump(config))
    return store


@pytest.fixture(scope="session")
def server(store: Path) -> Iterator[LiveServer]:
    with LiveServer(store) as srv:
        yield srv

"""Check a proposed config by serving one image with it, write the model folder, hot-load it."""

from __future__ import annotations

import io
import json
import shutil
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from PIL import Image

from serving.core.config import BoxDetection, ModelConfig, PixelSegmentation, SoftmaxTopK
from serving.core.repository import MODEL_FILE
from serving.core.runtime import OnnxModel
from serving.imaging.detection import DetectionParams
from serving.imaging.heads import Frame, decode
from serving.imaging.preprocess import ImagePreprocessor
from serving.imaging.segmentation import class_map_of


def validate(config: dict[str, Any], model_path: Path, labels: list[str]) -> str:
    """Load the model under ``config`` and run one probe image through the whole pipeline;
    returns a one-line account of what the probe gave. Raises on any mismatch."""
    parsed = ModelConfig.model_validate(config)
    model = OnnxModel(model_path, parsed)
    model.warmup()
    assert parsed.preprocess is not None
    pre = ImagePreprocessor(parsed.preprocess, max_pixels=64_000_000)
    prepared = pre(_probe_png())
    out = model.run_rows([{parsed.preprocess.input: prepared.tensor}])[0]
    post = parsed.postprocess
    if isinstance(post, BoxDetection):
        params = DetectionParams(
            post.score_threshold,
            post.iou_threshold,
            post.max_detections,
            post.pre_nms_top_k,
            multi_label=post.multi_label,
        )
        found = decode(out, post, Frame(prepared.geometry, pre.input_size(prepared.tensor)), params)
        if len(found.class_ids) and found.class_ids.max() >= len(labels):
            raise ValueError(f"class id {found.class_ids.max()} beyond the {len(labels)} labels")
        return f"probe image: {len(found.scores)} detections"
    if isinstance(post, PixelSegmentation):
        classes = class_map_of(out[post.output], prepared.geometry, pre.input_size(prepared.tensor))
        return f"probe image: class map {classes.shape[1]}x{classes.shape[0]}"
    if isinstance(post, SoftmaxTopK):
        return f"probe image: {out[post.output].shape[-1]} class scores"
    raise ValueError(f"postprocess {post.kind!r} is not added by models add")


def write(
    store: Path,
    config: dict[str, Any],
    labels: list[str],
    model_path: Path,
    version: int,
    *,
    force: bool,
) -> Path:
    folder = store / config["name"]
    if (folder / "config.yaml").exists() and not force:
        raise FileExistsError(f"{folder} already holds a model; pass --force to replace its config")
    (folder / str(version)).mkdir(parents=True, exist_ok=True)
    shutil.copyfile(model_path, folder / str(version) / MODEL_FILE)
    (folder / "labels.txt").write_text("\n".join(labels) + "\n", encoding="utf-8")
    (folder / "config.yaml").write_text(to_yaml(config), encoding="utf-8")
    return folder


class _Dumper(yaml.SafeDumper):
    """Lists of numbers (shapes, mean, std) on one line, as people write them."""


def _flow_numbers(dumper: yaml.SafeDumper, data: list) -> yaml.Node:
    flow = all(isinstance(v, int | float) for v in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_Dumper.add_representer(list, _flow_numbers)


def to_yaml(config: dict[str, Any]) -> str:
    return yaml.dump(config, Dumper=_Dumper, sort_keys=False, width=100)


def hot_load(url: str, name: str, token: str | None) -> dict[str, Any]:
    """Ask a running server to (re)load the model from its store."""
    request = urllib.request.Request(
        f"{url.rstrip('/')}/v2/repository/models/{name}/load", data=b"", method="POST"
    )
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        body = exc.read().decode(errors="replace")
        raise RuntimeError(f"server refused to load {name!r} ({exc.code}): {body}") from None


def _probe_png() -> bytes:
    """A 480x360 colour gradient: any decodable image exercises the whole path."""
    y, x = np.mgrid[0:360, 0:480]
    rgb = np.stack([x * 255 // 479, y * 255 // 359, (x + y) * 255 // 838], axis=-1)
    buf = io.BytesIO()
    Image.fromarray(rgb.astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()

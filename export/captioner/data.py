"""Caption data: scenes (``export.captioner.scenes``), their reference captions and the frozen
CNN's region grid, cached.

The pixels reach the CNN through serving's own JPEG decoding and preprocessing, exactly as an
uploaded scene would.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import torch
from torch import nn

from export.captioner.captions import references
from export.captioner.scenes import scene_jpeg
from export.scenes.graph import Scene
from serving.core.config import Preprocess
from serving.imaging.preprocess import ImagePreprocessor

log = logging.getLogger(__name__)

PREPROCESS = {
    "input": "pixels",
    "resize": {"mode": "exact", "width": 224, "height": 224, "interpolation": "bilinear"},
    "normalize": {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
}


def preprocessor() -> ImagePreprocessor:
    return ImagePreprocessor(Preprocess.model_validate(PREPROCESS), max_pixels=1 << 24)


def build_split(
    cnn: nn.Module, split: str, count: int, seed: int, file: Path, *, batch_size: int = 32
) -> tuple[np.ndarray, list[Scene]]:
    """Region grids [count, R, d_v] (float16) and scene graphs, from ``file`` if cached."""
    if file.is_file():
        stored = np.load(file)
        scenes = [Scene.from_dict(d) for d in json.loads(str(stored["scenes"]))]
        if len(scenes) == count:
            return stored["regions"], scenes
    prep = preprocessor()
    grids, scenes = [], []
    with torch.no_grad():
        for start in range(0, count, batch_size):
            pixels = []
            for index in range(start, min(count, start + batch_size)):
                jpeg, scene = scene_jpeg(split, index, seed)
                pixels.append(prep(jpeg).tensor)
                scenes.append(scene)
            grid = cnn(torch.from_numpy(np.stack(pixels))).flatten(2).transpose(1, 2)
            grids.append(grid.numpy().astype(np.float16))
            log.info("%s: %d/%d scenes encoded", split, len(scenes), count)
    regions = np.concatenate(grids)
    file.parent.mkdir(parents=True, exist_ok=True)
    np.savez(file, regions=regions, scenes=json.dumps([s.to_dict() for s in scenes]))
    return regions, scenes


def caption_table(scenes: list[Scene], per_image: int, seed: int) -> list[list[str]]:
    return [references(s, per_image, seed) for s in scenes]

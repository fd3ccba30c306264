"""Writing and reading a scene dataset on disk.

Layout under ``root``::

    <split>/images/000000.jpg      the scene (JPEG, quality 92)
    <split>/masks/000000.png       semantic class map (0 = background, 1.. = CLASSES)
    <split>/instances.json         COCO detection/instance-segmentation annotations
    <split>/scenes.jsonl           one scene graph per line
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from export.scenes.coco import CATEGORIES, annotations, image_entry, semantic_mask
from export.scenes.compose import DEFAULT_SPEC, SceneSpec, compose_scene
from export.scenes.graph import Scene

log = logging.getLogger(__name__)
JPEG_QUALITY = 92


def build_split(
    root: Path, split: str, count: int, *, seed: int = 0, spec: SceneSpec = DEFAULT_SPEC
) -> Path:
    """Compose ``count`` scenes of ``split`` into ``root/split``; returns that folder."""
    folder = root / split
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "masks").mkdir(parents=True, exist_ok=True)
    images, anns, graphs = [], [], []
    for index in range(count):
        composed = compose_scene(split, index, seed, spec)
        scene = composed.scene
        Image.fromarray(composed.image).save(
            folder / "images" / scene.file_name, quality=JPEG_QUALITY
        )
        classes = semantic_mask(
            scene.height, scene.width, [o.category_id for o in scene.objects], composed.masks
        )
        Image.fromarray(classes).save(folder / "masks" / scene.file_name.replace(".jpg", ".png"))
        images.append(image_entry(scene))
        anns.extend(annotations(scene, composed.masks, first_id=len(anns) + 1))
        graphs.append(json.dumps(scene.to_dict()))
        if (index + 1) % 500 == 0:
            log.info("%s: %d/%d scenes", split, index + 1, count)
    coco = {
        "images": images,
        "annotations": anns,
        "categories": CATEGORIES,
        "info": {"description": f"fovea scenes, split {split}, seed {seed}"},
    }
    (folder / "instances.json").write_text(json.dumps(coco))
    (folder / "scenes.jsonl").write_text("\n".join(graphs) + "\n")
    return folder


@dataclass(frozen=True)
class SceneRecord:
    image_path: Path
    mask_path: Path
    scene: Scene


def read_split(root: Path, split: str) -> list[SceneRecord]:
    folder = root / split
    lines = (folder / "scenes.jsonl").read_text().splitlines()
    scenes = [Scene.from_dict(json.loads(line)) for line in lines if line]
    return [
        SceneRecord(
            folder / "images" / s.file_name,
            folder / "masks" / s.file_name.replace(".jpg", ".png"),
            s,
        )
        for s in scenes
    ]


def load_pixels(record: SceneRecord) -> tuple[np.ndarray, np.ndarray]:
    """The scene's RGB pixels and its semantic class map."""
    image = np.asarray(Image.open(record.image_path).convert("RGB"))
    mask = np.asarray(Image.open(record.mask_path))
    return image, mask

"""``fovea export detector``: train the shape detector, evaluate it with pycocotools, export it.

Reads top to bottom: scenes -> frozen features cached -> FCOS head (with the LR-ASPP head, on
one shared backbone, see :mod:`export.scene_model`) trained -> ONNX with parity checked ->
COCO mAP on the held-out test scenes (unseen background photos), measured through the numpy
postprocessing the server runs -> ``model_store/<name>/``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from export.detector.publish import publish
from export.scene_setup import add_scene_arguments, prepare, trained_scene_model

NAME = "shapes_detector"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_scene_arguments(parser)
    parser.add_argument("--name", default=NAME, help="model folder name in the store")


def build(model_store: Path, cache: Path, **options: object) -> Path:
    run = prepare(cache, options)
    model = trained_scene_model(run, options)
    return publish(model.detector(), run, model_store, options)

"""``fovea export segmenter``: the shape segmenter, trained jointly with the detector (one run,
see :mod:`export.scene_model`), exported to ONNX and scored by mean IoU on the test scenes."""

from __future__ import annotations

import argparse
from pathlib import Path

from export.scene_setup import add_scene_arguments, prepare, trained_scene_model
from export.segmenter.publish import publish

NAME = "shapes_segmenter"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_scene_arguments(parser)
    parser.add_argument("--name", default=NAME, help="model folder name in the store")


def build(model_store: Path, cache: Path, **options: object) -> Path:
    run = prepare(cache, options)
    model = trained_scene_model(run, options)
    return publish(model.segmenter(), run, model_store, options)

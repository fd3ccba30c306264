"""What the detector and segmenter recipes share: options, dataset, backbone, feature cache."""

from __future__ import annotations

import argparse
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from export.backbone import MobileNetV2Pyramid, pretrained_pyramid, untrained_pyramid
from export.classifier import WEIGHTS
from export.feature_cache import CachedSplit, cached_split
from export.scene_model import SceneModel, scene_loss
from export.scenes.recipe import DEFAULT_COUNTS, ensure_dataset
from export.scenes.shapes import CLASSES
from export.training import Schedule, train


def add_scene_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the shared training run; both recipes must agree on them to share it."""
    parser.add_argument("--data", type=Path, help="scene dataset root (default <cache>/scenes)")
    parser.add_argument("--steps", type=int, default=500, help="optimiser steps")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=2e-3, help="AdamW learning rate of the heads")
    parser.add_argument("--input-size", type=int, default=256, help="letterbox side, pixels")
    parser.add_argument("--seed", type=int, default=0, help="scenes, initialisation, batches")
    parser.add_argument(
        "--no-pretrained",
        dest="pretrained",
        action="store_false",
        help="random backbone (pipeline tests only: the shipped models are pretrained)",
    )
    for split, count in DEFAULT_COUNTS.items():
        parser.add_argument(f"--{split}", type=int, default=count, help=f"{split} scenes")


@dataclass(frozen=True)
class SceneRun:
    root: Path  # dataset root
    folder: Path  # this run's checkpoints
    backbone: MobileNetV2Pyramid
    train: CachedSplit


def prepare(cache: Path, options: dict) -> SceneRun:
    """Dataset built, backbone loaded, train features cached, run folder named by options."""
    root = options["data"] or cache / "scenes"
    counts = {s: options[s] for s in DEFAULT_COUNTS}
    ensure_dataset(root, counts, options["seed"])
    if options["pretrained"]:
        backbone, tag = pretrained_pyramid(cache), WEIGHTS.sha256[:12]
    else:
        torch.manual_seed(options["seed"])
        backbone, tag = untrained_pyramid(), f"random{options['seed']}"
    train = cached_split(root, "train", options["input_size"], backbone, tag)
    settings = {k: v for k, v in sorted(options.items()) if k not in ("data", "threads", "name")}
    digest = hashlib.sha256(json.dumps(settings, default=str).encode()).hexdigest()[:10]
    return SceneRun(root, root / "runs" / f"scene-model-{digest}", backbone, train)


def trained_scene_model(run: SceneRun, options: dict) -> SceneModel:
    """Both heads after ``--steps`` steps; a finished or interrupted run resumes from its
    checkpoint, so ``fovea export detector`` and ``... segmenter`` train only once."""
    torch.manual_seed(options["seed"])
    model = SceneModel(run.backbone, len(CLASSES), options["input_size"])
    schedule = Schedule(
        steps=options["steps"],
        batch_size=options["batch_size"],
        lr=options["lr"],
        seed=options["seed"],
    )
    train(
        model, scene_loss(model, run.train), len(run.train), schedule, run.folder / "checkpoint.pt"
    )
    return model.eval()

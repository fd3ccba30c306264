"""Frozen backbone features of a scene split, computed once and kept on disk.

Training reads these instead of running the frozen layers every step. A cache is keyed by the
split size, input size and backbone weights; rebuilding a split deletes its caches
(:func:`export.scenes.recipe.ensure_dataset`), so a changed input never reuses stale features.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from export.backbone import MobileNetV2Pyramid
from export.scene_tensors import preprocessor, scene_tensors
from export.scenes.dataset import read_split

log = logging.getLogger(__name__)
BATCH = 32


@dataclass(frozen=True)
class CachedSplit:
    features: np.ndarray  # [N, 32, S/8, S/8] float16 stride-8 features
    mid16: np.ndarray  # [N, 64, S/16, S/16] float16 output of the frozen stride-16 blocks
    classes: np.ndarray  # [N, S, S] uint8 class maps (0 background, 255 padding)
    boxes: list[np.ndarray]  # per scene [K, 4] x1 y1 x2 y2 in input pixels
    labels: list[np.ndarray]  # per scene [K] 0-based classes

    def __len__(self) -> int:
        return len(self.boxes)


def cached_split(
    root: Path, split: str, size: int, backbone: MobileNetV2Pyramid, tag: str
) -> CachedSplit:
    """The split's features, computing and saving them first if needed."""
    records = read_split(root, split)
    folder = root / split / f"features-{size}-{tag}-{len(records)}"
    if not (folder / "done").is_file():
        _compute(records, size, backbone, folder)
    if not (folder / "mid16-done").is_file():
        _compute_mid16(folder, backbone)
    packed = np.load(folder / "boxes.npz")
    cuts = np.cumsum(packed["counts"])[:-1]
    return CachedSplit(
        features=np.load(folder / "features.npy", mmap_mode="r"),
        mid16=np.load(folder / "mid16.npy", mmap_mode="r"),
        classes=np.load(folder / "classes.npy", mmap_mode="r"),
        boxes=np.split(packed["boxes"], cuts),
        labels=np.split(packed["labels"], cuts),
    )


def _compute(records: list, size: int, backbone: MobileNetV2Pyramid, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    prep = preprocessor(size)
    n, cells = len(records), size // 8
    features = np.lib.format.open_memmap(
        folder / "features.npy", mode="w+", dtype=np.float16, shape=(n, 32, cells, cells)
    )
    classes = np.lib.format.open_memmap(
        folder / "classes.npy", mode="w+", dtype=np.uint8, shape=(n, size, size)
    )
    boxes, labels = [], []
    backbone.eval()
    for start in range(0, n, BATCH):
        batch = [scene_tensors(r, prep) for r in records[start : start + BATCH]]
        pixels = torch.from_numpy(np.stack([t.pixels for t in batch]))
        with torch.no_grad():
            features[start : start + len(batch)] = backbone.to_stride8(pixels).numpy()
        for i, t in enumerate(batch):
            classes[start + i] = t.classes
            boxes.append(t.boxes)
            labels.append(t.labels)
        log.info("features %s: %d/%d", folder.parent.name, start + len(batch), n)
    features.flush()
    classes.flush()
    np.savez(
        folder / "boxes.npz",
        boxes=np.concatenate(boxes).astype(np.float32).reshape(-1, 4),
        labels=np.concatenate(labels).astype(np.int64),
        counts=np.array([len(b) for b in boxes]),
    )
    (folder / "done").touch()


def _compute_mid16(folder: Path, backbone: MobileNetV2Pyramid) -> None:
    """The frozen stride-16 blocks, run on the cached stride-8 features."""
    c8 = np.load(folder / "features.npy", mmap_mode="r")
    n, _, cells, _ = c8.shape
    out = np.lib.format.open_memmap(
        folder / "mid16.npy", mode="w+", dtype=np.float16, shape=(n, 64, cells // 2, cells // 2)
    )
    backbone.eval()
    for start in range(0, n, BATCH):
        batch = torch.from_numpy(np.asarray(c8[start : start + BATCH], dtype=np.float32))
        with torch.no_grad():
            out[start : start + len(batch)] = backbone.frozen16(batch).numpy()
        log.info("stride-16 features %s: %d/%d", folder.parent.name, start + len(batch), n)
    out.flush()
    (folder / "mid16-done").touch()

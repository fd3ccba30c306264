"""Frozen ImageNet-backbone features of every image in the folder, computed once, kept on disk.

The frozen part of MobileNetV2 (everything below the blocks being fine-tuned) is exported to
ONNX and run by ONNX Runtime: on these CPUs it is several times faster than PyTorch's eager
depthwise convolutions. Images go through the server's own preprocessing
(:class:`serving.imaging.preprocess.ImagePreprocessor`), so training sees exactly the pixels
serving will. The cache is keyed by every file's path, size and mtime and by the settings that
shape the features; an interrupted run resumes from the last finished batch.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from torch import nn
from tqdm import tqdm

from export.onnx_export import export_onnx
from export.train_folder.dataset import DatasetError, Sample
from serving.errors import FoveaError
from serving.imaging.preprocess import ImagePreprocessor

log = logging.getLogger(__name__)
BATCH = 32
MAX_PIXELS = 100_000_000


class Trunk(nn.Module):
    """``features[:cut]``; when nothing above it is tuned, also the global average pool."""

    def __init__(self, layers: nn.Sequential, pooled: bool) -> None:
        super().__init__()
        self.layers = layers
        self.pooled = pooled

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        out = self.layers(pixels)
        return out.mean(dim=(2, 3)) if self.pooled else out


def cache_key(samples: Sequence[Sample], settings: dict[str, object]) -> str:
    """Changes whenever a file, its label or a feature-shaping setting changes."""
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for s in samples:
        stat = s.path.stat()
        digest.update(f"{s.path}\0{s.label}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:20]


def trunk_session(trunk: Trunk, size: int, folder: Path, threads: int) -> ort.InferenceSession:
    path = folder / "trunk.onnx"
    if not path.is_file():
        export_onnx(
            trunk,
            (torch.zeros(1, 3, size, size),),
            path,
            input_names=["pixels"],
            output_names=["trunk"],
        )
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def extract(
    samples: Sequence[Sample],
    preprocessor: ImagePreprocessor,
    trunk: Trunk,
    size: int,
    folder: Path,
    threads: int,
) -> np.ndarray:
    """``[N, ...]`` float16 trunk outputs for ``samples`` (memory-mapped from ``folder``).

    Raises :class:`DatasetError` listing every file that does not decode.
    """
    folder.mkdir(parents=True, exist_ok=True)
    session = trunk_session(trunk, size, folder, threads)
    done_file, data_file = folder / "done.json", folder / "features.npy"
    shape = session.run(None, {"pixels": np.zeros((1, 3, size, size), np.float32)})[0].shape[1:]
    state = json.loads(done_file.read_text()) if done_file.is_file() else {"rows": 0, "bad": []}
    if data_file.is_file() and state["rows"] > 0:
        features = np.load(data_file, mmap_mode="r+")
    else:
        features = np.lib.format.open_memmap(
            data_file, mode="w+", dtype=np.float16, shape=(len(samples), *shape)
        )
        state = {"rows": 0, "bad": []}
    n = len(samples)
    with tqdm(total=n, initial=state["rows"], desc="backbone features", unit="img") as bar:
        for start in range(state["rows"], n, BATCH):
            batch = samples[start : start + BATCH]
            pixels = np.zeros((len(batch), 3, size, size), np.float32)
            for i, sample in enumerate(batch):
                try:
                    pixels[i] = preprocessor(sample.path.read_bytes()).tensor
                except (FoveaError, OSError) as exc:
                    state["bad"].append(f"{sample.path}: {exc}")
            features[start : start + len(batch)] = session.run(None, {"pixels": pixels})[0]
            features.flush()
            state["rows"] = start + len(batch)
            done_file.write_text(json.dumps(state))
            bar.update(len(batch))
    if state["bad"]:
        shown = "\n  ".join(state["bad"][:20])
        more = f"\n  ... and {len(state['bad']) - 20} more" if len(state["bad"]) > 20 else ""
        raise DatasetError(
            f"{len(state['bad'])} image(s) cannot be read; fix or remove them:\n  {shown}{more}"
        )
    return np.load(data_file, mmap_mode="r")

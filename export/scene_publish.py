"""Publishing a model trained on generated scenes: export to ONNX, check parity on test scenes,
evaluate the exported file, write the model folder (ONNX, labels, config with the card)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from export.onnx_export import check_parity, export_onnx
from export.scene_setup import SceneRun
from export.scene_tensors import preprocessor, scene_tensors
from export.scenes.dataset import SceneRecord, read_split
from export.store import write_bytes, write_config

PARITY_SCENES = 4
Metrics = dict[str, Any]
# (the exported ONNX file, the test scenes) -> (metrics, metrics listed after parity)
Evaluate = Callable[[Path, list[SceneRecord]], tuple[Metrics, Metrics]]


def publish_scene_model(
    model: nn.Module,
    run: SceneRun,
    model_store: Path,
    options: dict,
    *,
    output_names: list[str],
    parity_atol: float,
    labels: Sequence[str],
    evaluate: Evaluate,
    config: Callable[[Metrics], dict[str, Any]],
) -> Path:
    size = options["input_size"]
    records = read_split(run.root, "test")
    prep = preprocessor(size)
    sample = np.stack([scene_tensors(r, prep).pixels for r in records[:PARITY_SCENES]])
    folder = model_store / options["name"]
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = export_onnx(
            model,
            (torch.from_numpy(sample[:1]),),
            Path(tmp) / "model.onnx",
            input_names=["pixels"],
            output_names=output_names,
        )
        parity = check_parity(model, onnx_path, {"pixels": sample}, atol=parity_atol)
        print(f"parity max |torch - onnxruntime| on {PARITY_SCENES} test scenes: {parity:.3g}")
        metrics, trailing = evaluate(onnx_path, records)
        write_bytes(folder / "1" / "model.onnx", onnx_path.read_bytes())
    write_bytes(folder / "labels.txt", ("\n".join(labels) + "\n").encode())
    metrics = {**metrics, "parity_max_abs_diff": float(f"{parity:.2g}"), **trailing}
    write_config(folder, config(metrics))
    print(f"wrote {folder}")
    return folder

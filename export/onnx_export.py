"""Export a torch module to ONNX with a dynamic batch axis, then prove ONNX Runtime agrees."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch


def export_onnx(
    module: torch.nn.Module,
    example: tuple[torch.Tensor, ...],
    path: Path,
    *,
    input_names: Sequence[str],
    output_names: Sequence[str],
    dynamic_axes: dict[str, dict[int, str]] | None = None,
    opset: int = 17,
) -> Path:
    """Write ``path``; every input and output gets a dynamic batch axis unless told otherwise."""
    module.eval()
    axes = dynamic_axes or {n: {0: "batch"} for n in (*input_names, *output_names)}
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(
            module,
            example,
            str(path),
            input_names=list(input_names),
            output_names=list(output_names),
            dynamic_axes=axes,
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    model.producer_name, model.producer_version = "fovea-export", "1"
    onnx.save(model, str(path))
    return path


def parity(
    module: torch.nn.Module,
    path: Path,
    inputs: dict[str, np.ndarray],
    *,
    atol: float,
    label: str = "",
) -> float:
    """Max abs difference between PyTorch and ONNX Runtime on ``inputs``; raises over ``atol``."""
    module.eval()
    with torch.no_grad():
        expected = module(*(torch.from_numpy(v) for v in inputs.values()))
    expected = expected if isinstance(expected, tuple | list) else (expected,)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    actual = session.run(None, inputs)
    worst = max(float(np.max(np.abs(e.numpy() - a))) for e, a in zip(expected, actual, strict=True))
    print(f"parity {label or path.name}: max |torch - onnxruntime| = {worst:.3g} (bound {atol:g})")
    if not worst <= atol:
        raise AssertionError(f"ONNX parity failed for {path}: {worst} > {atol}")
    return worst

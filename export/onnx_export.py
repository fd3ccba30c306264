"""Export a torch module to ONNX with a dynamic batch axis, then prove ONNX Runtime agrees.

Exports are meant to be committed, so they are made byte-for-byte reproducible: a fixed opset,
the TorchScript exporter (``dynamo=False``: deterministic node names, no timestamps, and no
``onnxscript`` dependency) and a fixed producer string instead of the torch version.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

log = logging.getLogger(__name__)

OPSET = 17
PRODUCER = ("fovea-export", "1")  # not the torch version: keeps exports byte-identical


class ParityError(AssertionError):
    """ONNX Runtime's outputs differ from PyTorch's by more than the allowed tolerance."""


def export_onnx(
    module: torch.nn.Module,
    example: tuple[torch.Tensor, ...],
    path: Path,
    *,
    input_names: Sequence[str],
    output_names: Sequence[str],
    dynamic_axes: Mapping[str, Mapping[int, str]] | None = None,
    opset: int = OPSET,
) -> Path:
    """Write ``module`` to ``path``; axis 0 of every input and output is a dynamic ``batch``."""
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
            dynamic_axes={k: dict(v) for k, v in axes.items()},
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )
    model = onnx.load(str(path))
    model.producer_name, model.producer_version = PRODUCER
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))
    return path


def max_abs_diff(module: torch.nn.Module, path: Path, inputs: Mapping[str, np.ndarray]) -> float:
    """Largest ``|torch - onnxruntime|`` over all outputs, inputs passed in ``inputs`` order."""
    module.eval()
    with torch.no_grad():
        expected = module(*(torch.from_numpy(v) for v in inputs.values()))
    if isinstance(expected, torch.Tensor):
        expected = (expected,)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    actual = session.run(None, dict(inputs))
    return max(float(np.max(np.abs(e.numpy() - a))) for e, a in zip(expected, actual, strict=True))


def check_parity(
    module: torch.nn.Module,
    path: Path,
    inputs: Mapping[str, np.ndarray],
    *,
    atol: float,
    label: str = "",
) -> float:
    """:func:`max_abs_diff`, logged; raises :class:`ParityError` when it exceeds ``atol``."""
    worst = max_abs_diff(module, path, inputs)
    log.info("parity %s: max |torch - onnxruntime| = %.3g (atol %g)", label, worst, atol)
    if not worst <= atol:  # also catches NaN
        raise ParityError(f"{path} ({label}): max abs diff {worst} > {atol}")
    return worst

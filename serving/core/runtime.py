"""ONNX Runtime sessions: provider choice, threading, IO checks against the config, warm-up."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort

from serving.core.config import ModelConfig, TensorSpec
from serving.core.datatypes import ORT_TO_V2, V2_TO_NUMPY

log = logging.getLogger(__name__)

Tensors = dict[str, np.ndarray]
_WARMUP_DYNAMIC_DIM = 64  # stand-in for dynamic non-batch axes (e.g. image height) at warm-up


class ModelLoadError(RuntimeError):
    """The ONNX file is missing, corrupt, or disagrees with its config."""


def choose_providers(preferred: list[str]) -> list[str]:
    """The configured providers that this onnxruntime build has, CPU always last resort."""
    available = set(ort.get_available_providers())
    chosen = [p for p in preferred if p in available]
    if "CPUExecutionProvider" not in chosen:
        chosen.append("CPUExecutionProvider")
    return chosen


class OnnxModel:
    """One model version's session, with rows-in/rows-out batch execution for the batcher."""

    def __init__(self, path: Path, config: ModelConfig) -> None:
        if not path.is_file():
            raise ModelLoadError(f"{path} does not exist")
        rt = config.runtime
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = rt.intra_op_threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.add_session_config_entry(
            "session.intra_op.allow_spinning", "1" if rt.allow_spinning else "0"
        )
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(
                str(path), options, providers=choose_providers(rt.providers)
            )
        except Exception as exc:  # onnxruntime raises its own exception types for bad files
            raise ModelLoadError(f"{path}: onnxruntime cannot load it: {exc}") from exc
        self.config = config
        self.providers: list[str] = self.session.get_providers()
        self._output_names = [o.name for o in config.outputs]
        _check_io(self.session.get_inputs(), config.inputs, "input", config.batching.max_batch_size)
        _check_io(
            self.session.get_outputs(), config.outputs, "output", config.batching.max_batch_size
        )

    def run(self, feeds: Tensors) -> Tensors:
        values = self.session.run(self._output_names, feeds)
        return dict(zip(self._output_names, values, strict=True))

    def run_rows(self, rows: list[Tensors]) -> list[Tensors]:
        return run_rows(self.run, rows)

    def warmup(self) -> None:
        """Run each configured batch size once so the first real request is not slow."""
        for size in self.config.runtime.warmup_batch_sizes:
            size = min(size, self.config.batching.max_batch_size)
            feeds = {spec.name: _zeros(spec, size) for spec in self.config.inputs}
            self.run(feeds)


def run_rows(run: Callable[[Tensors], Tensors], rows: list[Tensors]) -> list[Tensors]:
    """Stack rows (tensors without the batch axis) into batches, ``run``, split the outputs.

    Rows whose shapes differ (dynamic spatial axes) cannot share a tensor, so they run as
    separate groups, each still batched.
    """
    groups: dict[tuple, list[int]] = defaultdict(list)
    for i, row in enumerate(rows):
        groups[tuple((k, v.shape) for k, v in sorted(row.items()))].append(i)
    results: list[Tensors] = [{} for _ in rows]
    for indices in groups.values():
        feeds = {k: np.stack([rows[i][k] for i in indices]) for k in rows[indices[0]]}
        outputs = run(feeds)
        for j, i in enumerate(indices):
            results[i] = {name: value[j] for name, value in outputs.items()}
    return results


def _zeros(spec: TensorSpec, batch: int) -> np.ndarray:
    dims = [batch] + [d if d > 0 else _WARMUP_DYNAMIC_DIM for d in spec.shape[1:]]
    return np.zeros(dims, dtype=V2_TO_NUMPY[spec.datatype])


def _check_io(actual: list, declared: list[TensorSpec], kind: str, max_batch: int) -> None:
    by_name = {a.name: a for a in actual}
    names = set(by_name)
    want = {d.name for d in declared}
    if names != want:
        raise ModelLoadError(
            f"{kind}s differ from the config: model has {sorted(names)}, config has {sorted(want)}"
        )
    for spec in declared:
        node = by_name[spec.name]
        dtype = ORT_TO_V2.get(node.type, node.type)
        if dtype != spec.datatype:
            raise ModelLoadError(
                f"{kind} {spec.name!r}: model datatype {dtype}, config says {spec.datatype}"
            )
        shape = list(node.shape)
        if len(shape) != len(spec.shape):
            raise ModelLoadError(
                f"{kind} {spec.name!r}: model rank {len(shape)} ({shape}), config {spec.shape}"
            )
        if max_batch > 1 and isinstance(shape[0], int):
            raise ModelLoadError(
                f"{kind} {spec.name!r}: batch axis is fixed to {shape[0]} but max_batch_size is "
                f"{max_batch}; export with a dynamic batch axis"
            )
        for axis, (have, need) in enumerate(zip(shape[1:], spec.shape[1:], strict=True), 1):
            if need > 0 and isinstance(have, int) and have != need:
                raise ModelLoadError(
                    f"{kind} {spec.name!r}: axis {axis} is {have} in the model, {need} in config"
                )

"""ONNX Runtime sessions: provider choice, threading, IO checks against the config, warm-up."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnxruntime.capi.onnxruntime_pybind11_state import InvalidArgument

from serving.core.config import ModelConfig, TensorSpec
from serving.core.datatypes import ORT_TO_V2, V2_TO_NUMPY
from serving.core.worker_board import WorkerBoard

log = logging.getLogger(__name__)

Tensors = dict[str, np.ndarray]
_WARMUP_DYNAMIC_DIM = 64  # stand-in for dynamic non-batch axes (e.g. image height) at warm-up


class ModelLoadError(RuntimeError):
    """The ONNX file is missing, corrupt, or disagrees with its config."""


class RejectedInput(ValueError):
    """ONNX Runtime refused the feeds (INVALID_ARGUMENT: a shape or value it cannot run).

    Whether that is the client's fault depends on who built the tensors: the tensor endpoints
    answer 400, task pipelines (which build tensors themselves) leave it a server error.
    """


# Defaults for GPU serving: grow the memory arena by what is asked (not powers of two: dynamic
# batch sizes would otherwise reserve far more than they use), pick conv algorithms by
# heuristic (exhaustive search re-runs for every new input shape, stalling first requests),
# and copy inputs on the compute stream.
PROVIDER_DEFAULTS: dict[str, dict[str, str | int]] = {
    "CUDAExecutionProvider": {
        "device_id": 0,
        "arena_extend_strategy": "kSameAsRequested",
        "cudnn_conv_algo_search": "HEURISTIC",
        "do_copy_in_default_stream": 1,
    },
}
_GPU_PROVIDERS = {"CUDAExecutionProvider", "TensorrtExecutionProvider", "ROCMExecutionProvider"}


def choose_providers(preferred: list[str]) -> list[str]:
    """The configured providers that this onnxruntime build has, CPU always last resort."""
    available = set(ort.get_available_providers())
    chosen = [p for p in preferred if p in available]
    if "CPUExecutionProvider" not in chosen:
        chosen.append("CPUExecutionProvider")
    return chosen


def provider_options(
    providers: list[str], overrides: dict[str, dict[str, str | int]]
) -> list[dict[str, str | int]]:
    """Options for each provider: the defaults above, then the model config's."""
    return [{**PROVIDER_DEFAULTS.get(p, {}), **overrides.get(p, {})} for p in providers]


class OnnxModel:
    """One model version's session, with rows-in/rows-out batch execution for the batcher."""

    def __init__(
        self,
        path: Path,
        config: ModelConfig,
        *,
        default_threads: int = 0,
        board: WorkerBoard | None = None,
        lone_threads: int = 0,
    ) -> None:
        """``default_threads``: intra-op threads when the config leaves them at 0 (the server's
        thread budget); 0 here too lets ONNX Runtime use every core. ``board`` counts this
        machine's CPU runs in flight; with it and ``runtime.lone_runs_use_all_cores``, a run
        that starts alone goes to a second session with ``lone_threads`` intra-op threads."""
        if not path.is_file():
            raise ModelLoadError(f"{path} does not exist")
        rt = config.runtime
        threads = rt.intra_op_threads or default_threads
        self.session = _session(path, config, threads)
        self.config = config
        self.providers: list[str] = self.session.get_providers()
        self._output_names = [o.name for o in config.outputs]
        on_gpu = self.providers[0] in _GPU_PROVIDERS
        self.io_binding = on_gpu if rt.io_binding is None else rt.io_binding
        on_cpu = self.providers[0] == "CPUExecutionProvider"
        self._board = board if on_cpu else None  # GPU runs leave the CPU cores free
        self._lone_session: ort.InferenceSession | None = None
        lone = rt.lone_runs_use_all_cores and not self.io_binding  # bound runs take self.session
        if self._board is not None and lone and lone_threads > threads:
            self._lone_session = _session(path, config, lone_threads)
        self.batched = config.batching.batched
        self.rows_per_run = config.batching.rows_per_run_on(self.providers[0])
        self._ranks = {spec.name: len(spec.shape) for spec in config.inputs}
        self.warmup_shapes: dict[str, list[int]] = {}  # per output, batch axis dropped
        _check_io(self.session.get_inputs(), config.inputs, "input", config.batching.max_batch_size)
        _check_io(
            self.session.get_outputs(), config.outputs, "output", config.batching.max_batch_size
        )

    def run(self, feeds: Tensors) -> Tensors:
        try:
            if self.io_binding:
                return self._run_bound(feeds)
            if self._board is None:
                values = self.session.run(self._output_names, feeds)
            else:
                with self._board.running() as alone:
                    session = self._lone_session if alone and self._lone_session else self.session
                    values = session.run(self._output_names, feeds)
        except InvalidArgument as exc:
            raise RejectedInput(str(exc).split("INVALID_ARGUMENT : ", 1)[-1]) from exc
        return dict(zip(self._output_names, values, strict=True))

    def _run_bound(self, feeds: Tensors) -> Tensors:
        """Inputs copied to the device once, outputs written straight back to host memory."""
        binding = self.session.io_binding()
        for name, value in feeds.items():
            binding.bind_cpu_input(name, np.ascontiguousarray(value))
        for name in self._output_names:
            binding.bind_output(name, "cpu")
        self.session.run_with_iobinding(binding)
        values = binding.copy_outputs_to_cpu()
        return dict(zip(self._output_names, values, strict=True))

    def run_rows(self, rows: list[Tensors]) -> list[Tensors]:
        """Stack rows (tensors without the batch axis) into batches, run, split the outputs;
        a model without a batch axis runs each row as is."""
        if not self.batched:
            return [self.run(self._full_rank(row)) for row in rows]
        return run_rows(self.run, rows)

    def _full_rank(self, row: Tensors) -> Tensors:
        """A model without a batch axis may still want a leading axis of one (``[1, 3, H, W]``
        inputs of torchvision detectors): add it to row tensors that lack it."""
        return {
            k: v.reshape((1,) * (self._ranks[k] - v.ndim) + v.shape) if k in self._ranks else v
            for k, v in row.items()
        }

    def warmup(self) -> None:
        """Run each configured batch size once (on both sessions, if there are two) so the
        first real request is not slow."""
        if not self.batched:
            batches = [
                {spec.name: _zeros(spec.shape, None, spec.datatype) for spec in self.config.inputs}
            ]
        else:
            sizes = {min(n, self.rows_per_run) for n in self.config.runtime.warmup_batch_sizes}
            batches = [
                {
                    spec.name: _zeros(spec.shape[1:], size, spec.datatype)
                    for spec in self.config.inputs
                }
                for size in sorted(sizes)
            ]
        for feeds in batches:
            if self._lone_session is None:
                self._observe(self.run(feeds))
                continue
            for session in (self._lone_session, self.session):  # run() may take either
                values = session.run(self._output_names, feeds)
            self._observe(dict(zip(self._output_names, values, strict=True)))

    def _observe(self, outputs: Tensors) -> None:
        """Keep the output shapes a real run produced: they resolve the config's dynamic axes,
        so a task can check its output layout when the model loads."""
        skip = 1 if self.batched else 0
        self.warmup_shapes = {k: list(v.shape[skip:]) for k, v in outputs.items()}


def _session(path: Path, config: ModelConfig, threads: int) -> ort.InferenceSession:
    rt = config.runtime
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.add_session_config_entry(
        "session.intra_op.allow_spinning", "1" if rt.allow_spinning else "0"
    )
    options.enable_cpu_mem_arena = rt.cpu_mem_arena
    options.enable_mem_pattern = rt.mem_pattern
    options.log_severity_level = 3
    providers = choose_providers(rt.providers)
    try:
        return ort.InferenceSession(
            str(path),
            options,
            providers=providers,
            provider_options=provider_options(providers, rt.provider_options),
        )
    except Exception as exc:  # onnxruntime raises its own exception types for bad files
        raise ModelLoadError(f"{path}: onnxruntime cannot load it: {exc}") from exc


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
        if len(indices) == 1:  # a lone row: a view with the batch axis, not a copy
            feeds = {k: np.asarray(v)[np.newaxis] for k, v in rows[indices[0]].items()}
        else:
            feeds = {k: np.stack([rows[i][k] for i in indices]) for k in rows[indices[0]]}
        outputs = run(feeds)
        for j, i in enumerate(indices):
            results[i] = {name: value[j] for name, value in outputs.items()}
    return results


def _zeros(shape: list[int], batch: int | None, datatype: str) -> np.ndarray:
    dims = ([] if batch is None else [batch]) + [d if d > 0 else _WARMUP_DYNAMIC_DIM for d in shape]
    return np.zeros(dims, dtype=V2_TO_NUMPY[datatype])


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
        if max_batch > 1 and isinstance(shape[0], int) and shape[0] > 0:
            raise ModelLoadError(
                f"{kind} {spec.name!r}: batch axis is fixed to {shape[0]} but max_batch_size is "
                f"{max_batch}; export with a dynamic batch axis"
            )
        first = 1 if max_batch > 0 else 0  # max_batch_size 0: every axis is the model's own
        for axis, (have, need) in enumerate(
            zip(shape[first:], spec.shape[first:], strict=True), first
        ):
            if need > 0 and isinstance(have, int) and have != need:
                raise ModelLoadError(
                    f"{kind} {spec.name!r}: axis {axis} is {have} in the model, {need} in config"
                )

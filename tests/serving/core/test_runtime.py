"""ONNX Runtime sessions on their own: IO checked against the config, rows batched and split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from serving.core.config import load_config
from serving.core.runtime import ModelLoadError, OnnxModel, choose_providers
from tests.models import write_model_folder


def _model(tmp_path: Path, **overrides: object) -> OnnxModel:
    folder = write_model_folder(tmp_path, "scale", width=3, factor=2.0, **overrides)
    return OnnxModel(folder / "1" / "model.onnx", load_config(folder / "config.yaml"))


def test_rows_are_stacked_run_and_split(tmp_path: Path) -> None:
    model = _model(tmp_path)
    rows = [{"x": np.full(3, i, np.float32)} for i in range(5)]
    outputs = model.run_rows(rows)
    assert [o["y"].tolist() for o in outputs] == [[2.0 * i] * 3 for i in range(5)]


def test_cpu_is_always_the_last_provider() -> None:
    assert choose_providers(["NoSuchProvider"]) == ["CPUExecutionProvider"]
    assert choose_providers(["CPUExecutionProvider"]) == ["CPUExecutionProvider"]


def test_config_that_disagrees_with_the_graph_is_refused(tmp_path: Path) -> None:
    wrong = [{"name": "x", "datatype": "FP32", "shape": [-1, 5]}]
    with pytest.raises(ModelLoadError, match="x"):
        _model(tmp_path, inputs=wrong)
    with pytest.raises(ModelLoadError, match="does not exist"):
        OnnxModel(tmp_path / "missing.onnx", load_config(tmp_path / "scale" / "config.yaml"))


def test_cpu_batch_cap_limits_rows_per_call_and_warmup(tmp_path: Path) -> None:
    capped = {"max_batch_size": 32, "cpu_max_batch_size": 4}
    model = _model(
        tmp_path,
        batching=capped,
        runtime={"providers": ["CPUExecutionProvider"], "warmup_batch_sizes": [1, 8, 32]},
    )
    assert model.providers[0] == "CPUExecutionProvider"
    assert model.rows_per_run == 4
    calls: list[int] = []
    model.session.run = lambda names, feeds: calls.append(len(feeds["x"])) or [feeds["x"] * 2]
    model.warmup()
    assert calls == [1, 4]  # 8 and 32 are capped to 4, run once


def test_cpu_batch_cap_does_not_apply_to_gpu_providers(tmp_path: Path) -> None:
    from serving.core.config import Batching

    b = Batching(max_batch_size=32, cpu_max_batch_size=4)
    assert b.rows_per_run_on("CPUExecutionProvider") == 4
    assert b.rows_per_run_on("CUDAExecutionProvider") == 32
    assert (
        Batching(max_batch_size=2, cpu_max_batch_size=4).rows_per_run_on("CPUExecutionProvider")
        == 2
    )

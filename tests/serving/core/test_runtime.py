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

"""Session options: provider defaults merge with the config; IO binding gives the same outputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from serving.core.config import load_config
from serving.core.runtime import OnnxModel, provider_options
from tests.models import write_model_folder


def test_provider_options_merge_defaults_with_config() -> None:
    opts = provider_options(
        ["CUDAExecutionProvider", "CPUExecutionProvider"],
        {"CUDAExecutionProvider": {"device_id": 1}},
    )
    assert opts[0]["device_id"] == 1
    assert opts[0]["cudnn_conv_algo_search"] == "HEURISTIC"
    assert opts[1] == {}


def test_io_binding_matches_plain_run(tmp_path: Path) -> None:
    folder = write_model_folder(tmp_path, "m", factor=3.0)
    config = load_config(folder / "config.yaml")
    plain = OnnxModel(folder / "1" / "model.onnx", config, default_threads=1)
    assert plain.io_binding is False  # CPU: off unless asked
    bound_config = config.model_copy(
        update={"runtime": config.runtime.model_copy(update={"io_binding": True})}
    )
    bound = OnnxModel(folder / "1" / "model.onnx", bound_config)
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    np.testing.assert_array_equal(bound.run({"x": x})["y"], plain.run({"x": x})["y"])
    np.testing.assert_array_equal(bound.run({"x": x})["y"], x * 3)


def test_memory_options_reach_the_session_and_keep_outputs(tmp_path: Path) -> None:
    folder = write_model_folder(tmp_path, "m", factor=2.0)
    config = load_config(folder / "config.yaml")
    lean = config.model_copy(
        update={
            "runtime": config.runtime.model_copy(
                update={"cpu_mem_arena": False, "mem_pattern": False}
            )
        }
    )
    default = OnnxModel(folder / "1" / "model.onnx", config, default_threads=1)
    model = OnnxModel(folder / "1" / "model.onnx", lean, default_threads=1)
    options = model.session.get_session_options()
    assert not options.enable_cpu_mem_arena and not options.enable_mem_pattern
    assert default.session.get_session_options().enable_cpu_mem_arena
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    np.testing.assert_array_equal(model.run({"x": x})["y"], x * 2)

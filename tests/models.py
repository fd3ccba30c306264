"""Tiny ONNX models and model folders built on the fly, for fast repository/batcher tests."""

from __future__ import annotations

from pathlib import Path

import onnx
import yaml
from onnx import TensorProto, helper

CARD = {
    "summary": "test model",
    "source": "built by the test",
    "license": "n/a",
    "training_data": "none",
    "reproduce": "tests/models.py",
}


def scale_model(path: Path, width: int = 4, factor: float = 2.0) -> None:
    """``y = x * factor`` over ``[-1, width]`` FP32: outputs are checkable by hand."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", width])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", width])
    k = helper.make_tensor("k", TensorProto.FLOAT, [1], [factor])
    graph = helper.make_graph([helper.make_node("Mul", ["x", "k"], ["y"])], "scale", [x], [y], [k])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, path)


def write_model_folder(
    store: Path,
    name: str,
    *,
    width: int = 4,
    factor: float = 2.0,
    versions: tuple[int, ...] = (1,),
    **overrides: object,
) -> Path:
    folder = store / name
    config = {
        "name": name,
        "task": "tensor",
        "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, width]}],
        "outputs": [{"name": "y", "datatype": "FP32", "shape": [-1, width]}],
        "batching": {"max_batch_size": 8, "max_queue_size": 64},
        "runtime": {"providers": ["CPUExecutionProvider"], "intra_op_threads": 1},
        "card": CARD,
    }
    config.update(overrides)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    for v in versions:
        scale_model(folder / str(v) / "model.onnx", width, factor * v)
    return folder

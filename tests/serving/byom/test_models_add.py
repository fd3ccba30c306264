"""``fovea models add``: what it infers, what it refuses and why, and the CLI wiring."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import onnx
import pytest
import yaml
from onnx import TensorProto, helper

from serving.model_add import main as models_add
from tests.serving.byom.conftest import Exported

ROOT = Path(__file__).resolve().parents[3]


def unknown_layout_model(path: Path) -> Path:
    """An image model whose two outputs ([N, 3] each) fit no format."""
    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["n", 3, 32, 32])
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["n", 3]) for n in ("a", "b")]
    axes = helper.make_tensor("axes", TensorProto.INT64, [2], [2, 3])
    nodes = [
        helper.make_node("ReduceMean", ["image", "axes"], ["a"], keepdims=0),
        helper.make_node("ReduceMax", ["image", "axes"], ["b"], keepdims=0),
    ]
    graph = helper.make_graph(nodes, "unknown", [image], outs, initializer=[axes])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    onnx.save(model, path)
    return path


def test_layout_matching_no_format_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = unknown_layout_model(tmp_path / "odd.onnx")
    assert models_add([str(path), "--store", str(tmp_path / "store"), "--task", "detection"]) == 2
    err = capsys.readouterr().err
    assert "Found: a FP32 [-1, 3]; b FP32 [-1, 3]" in err and "Expected one of" in err
    assert "yolov8: Ultralytics v8/11 [4+C, A]" in err
    assert not (tmp_path / "store").exists()


def test_wrong_format_says_found_and_expected(
    tmp_path: Path, exported: dict[str, Exported], capsys: pytest.CaptureFixture[str]
) -> None:
    labels = tmp_path / "labels.txt"
    labels.write_text("a\nb\nc\nd\n")
    argv = [str(exported["detr"].path), "--store", str(tmp_path), "--format", "yolov8"]
    assert models_add([*argv, "--labels", str(labels)]) == 2
    assert "format 'yolov8' reads 1 outputs" in capsys.readouterr().err
    argv = [str(exported["detr"].path), "--store", str(tmp_path), "--labels", str(labels)]
    labels.write_text("a\nb\nc\n")  # one label short of the logits' 4 classes + no-object
    assert models_add(argv) == 2
    assert "has shape [20, 5], expected [*, 4]" in capsys.readouterr().err


def test_labels_are_asked_for_only_when_the_file_has_none(
    tmp_path: Path, exported: dict[str, Exported], capsys: pytest.CaptureFixture[str]
) -> None:
    assert models_add([str(exported["ssdlite"].path), "--store", str(tmp_path)]) == 2
    assert "pass --labels FILE" in capsys.readouterr().err


def test_dry_run_through_the_fovea_cli_prints_the_config(
    tmp_path: Path, exported: dict[str, Exported]
) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-m", "serving.cli", "models", "add", str(exported["yolov8n"].path)]
    run = subprocess.run(
        [*argv, "--store", str(tmp_path), "--dry-run"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )
    config = yaml.safe_load(run.stdout)
    assert config["postprocess"]["format"] == "yolov8"
    assert config["postprocess"]["multi_label"] is False
    assert config["preprocess"]["resize"] == {
        "mode": "letterbox",
        "width": 320,
        "height": 320,
        "center": True,
        "pad_value": 114,
    }  # from the imgsz Ultralytics wrote into the metadata
    assert "3 labels" in run.stderr and "probe image" in run.stderr
    assert list(tmp_path.iterdir()) == []

